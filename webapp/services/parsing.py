"""Parsing many stored messages at once: in processes of their own when there are many (CPU-bound).

The processes read each raw message from the blob folder and put the attachments there themselves, so
only the text and the parts' hashes travel back; the caller flushes the blob store before committing.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

from webapp.adapters import memory, parser
from webapp.adapters.blobstore import FolderBlobStore
from webapp.adapters.parser import ParsedMessage
from webapp.adapters.process import die_with_parent

# Below this many messages a pool costs more than it saves.
POOL_THRESHOLD = 64

ParseMany = Callable[[Sequence[str]], list[ParsedMessage]]


def parse_stored(root: str, digest: str) -> ParsedMessage:
    """Parse the raw message ``digest`` of the blob folder and store its parts there (no flush)."""
    memory.fix_mmap_threshold()
    store = FolderBlobStore(Path(root))
    parsed = parser.parse(store.get(digest))
    parts = tuple(
        replace(part, content=b"", sha256=store.put(part.content, durable=False), size=len(part.content))
        for part in parsed.parts
    )
    return replace(parsed, parts=parts)


def _executor(workers: int) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_orphan_guard)


def _orphan_guard() -> None:
    """In a parsing process: end with the fetch that started it (a killed worker leaves no orphans).

    PR_SET_PDEATHSIG follows the parent *thread*, so a watchdog thread checks the parent as well.
    """
    parent = os.getppid()
    if parent == 1:  # started after the fetch that asked for it was already gone
        os._exit(1)
    die_with_parent()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="orphan-guard", daemon=True).start()


def parse_stored_batch(root: str, digests: Sequence[str]) -> list[ParsedMessage]:
    return [parse_stored(root, digest) for digest in digests]


class Background:
    """Parses stored batches in spawned processes while the fetch goes on downloading the next ones."""

    def __init__(self, root: Path, workers: int | None = None) -> None:
        self.root = str(root)
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.executor: ProcessPoolExecutor | None = None
        self.running: list[tuple[list[int], Future[list[ParsedMessage]]]] = []

    def submit(self, ids: Sequence[int], digests: Sequence[str], piece: int = 25) -> None:
        if self.executor is None:
            self.executor = _executor(self.workers)
        for start in range(0, len(ids), piece):
            future = self.executor.submit(parse_stored_batch, self.root, list(digests[start : start + piece]))
            self.running.append((list(ids[start : start + piece]), future))

    def done(self, wait: bool = False, at_least: int = 1) -> list[tuple[list[int], list[ParsedMessage]]]:
        """The finished pieces (all of them, with ``wait``), in submission order — or none until at least
        ``at_least`` have finished (writing them in bigger groups costs the fetch less)."""
        if not wait and sum(1 for _ids, future in self.running[:at_least] if future.done()) < at_least:
            return []
        finished = []
        while self.running and (wait or self.running[0][1].done()):
            ids, future = self.running.pop(0)
            finished.append((ids, future.result()))
        return finished

    def close(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
            self.executor = None


@contextmanager
def pool(root: Path | None, load: Callable[[str], bytes], workers: int | None = None) -> Iterator[ParseMany]:
    """Yield a function that parses stored messages by their hashes, in spawned processes for big lists.

    ``root`` is the blob folder (None when blobs live in the database: then this process parses).
    Spawned, not forked, processes: a fork would share the parent's database and Redis sockets.
    """
    executor: ProcessPoolExecutor | None = None
    count = workers or max(1, min(4, os.cpu_count() or 1))

    def parse_many(digests: Sequence[str]) -> list[ParsedMessage]:
        nonlocal executor
        if root is None or len(digests) < POOL_THRESHOLD or count < 2:
            return [parser.parse(load(digest)) for digest in digests]
        if executor is None:
            executor = _executor(count)
        return list(executor.map(partial(parse_stored, str(root)), digests, chunksize=8))

    try:
        yield parse_many
    finally:
        if executor is not None:
            executor.shutdown()
