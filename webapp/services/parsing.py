"""Parsing many stored messages at once: in processes of their own when there are many (CPU-bound).

The processes read each raw message from the blob folder and put the attachments there themselves, so
only the text and the parts' hashes travel back; the caller flushes the blob store before committing.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

from webapp.adapters import memory, parser
from webapp.adapters.blobstore import FolderBlobStore
from webapp.adapters.parser import ParsedMessage

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
            executor = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"))
        return list(executor.map(partial(parse_stored, str(root)), digests, chunksize=8))

    try:
        yield parse_many
    finally:
        if executor is not None:
            executor.shutdown()
