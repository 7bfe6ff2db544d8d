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
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from webapp.adapters import memory
from webapp.adapters.mime import parser
from webapp.adapters.mime.parser import ParsedMessage
from webapp.adapters.process import die_with_parent
from webapp.adapters.storage.blobstore import BlobMissing, FolderBlobStore

# What a message whose stored bytes are gone says (kept listed, shown as malformed, never a crash).
MISSING = "its raw bytes are missing from the blob store"
# Below this many messages a pool costs more than it saves.
POOL_THRESHOLD = 64


def parse_stored(root: str, digest: str) -> ParsedMessage:
    """Parse the raw message ``digest`` of the blob folder and store its parts there (no flush)."""
    memory.fix_mmap_threshold()
    store = FolderBlobStore(Path(root))
    try:
        raw = store.get(digest)
    except BlobMissing:
        return ParsedMessage(error=MISSING)
    parsed = parser.parse(raw, headers=False)  # stored with the row already
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
    """Parse several stored messages in one task of the pool (see :func:`parse_stored`)."""
    return [parse_stored(root, digest) for digest in digests]


Result = Callable[[], list[ParsedMessage]]


class Parser:
    """Starts parsing stored messages by their hashes and hands back a function that waits for the result,
    so the caller writes one chunk while the next is parsed. Spawned processes for big chunks, not forked
    ones (a fork would share the parent's database and Redis sockets); this process for small chunks or
    when blobs live in the database (``root`` None)."""

    def __init__(self, root: Path | None, load: Callable[[str], bytes], workers: int | None = None) -> None:
        self.root = root
        self.load = load
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.executor: ProcessPoolExecutor | None = None

    def start(self, digests: Sequence[str], piece: int = 8) -> Result:
        """Start parsing ``digests``; return a function that waits for the results, in the same order."""
        if self.root is None or len(digests) < POOL_THRESHOLD or self.workers < 2:
            parsed = [self._parse_one(digest) for digest in digests]
            return lambda: parsed
        if self.executor is None:
            self.executor = _executor(self.workers)
        root = str(self.root)
        futures = [
            self.executor.submit(parse_stored_batch, root, list(digests[start : start + piece]))
            for start in range(0, len(digests), piece)
        ]
        return lambda: [message for future in futures for message in future.result()]

    def _parse_one(self, digest: str) -> ParsedMessage:
        try:
            return parser.parse(self.load(digest), headers=False)
        except BlobMissing:
            return ParsedMessage(error=MISSING)

    def close(self) -> None:
        """Stop the pool's processes, dropping the parsing tasks not started yet."""
        if self.executor is not None:
            self.executor.shutdown(cancel_futures=True)
            self.executor = None


@contextmanager
def pool(root: Path | None, load: Callable[[str], bytes], workers: int | None = None) -> Iterator[Parser]:
    """A :class:`Parser` whose processes end with the block."""
    started = Parser(root, load, workers)
    try:
        yield started
    finally:
        started.close()
