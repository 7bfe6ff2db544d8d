"""Parsing many messages at once: in a few processes of their own when there are many (CPU-bound)."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from webapp.adapters import parser
from webapp.adapters.parser import ParsedMessage

# Below this many messages a pool costs more than it saves.
POOL_THRESHOLD = 64

ParseMany = Callable[[Sequence[bytes]], list[ParsedMessage]]


@contextmanager
def pool(workers: int | None = None) -> Iterator[ParseMany]:
    """Yield a function that parses a list of raw messages, using spawned processes for big lists.

    Spawned (not forked) processes: a fork would share the parent's database and Redis sockets.
    """
    executor: ProcessPoolExecutor | None = None
    count = workers or max(1, min(4, os.cpu_count() or 1))

    def parse_many(raws: Sequence[bytes]) -> list[ParsedMessage]:
        nonlocal executor
        if len(raws) < POOL_THRESHOLD or count < 2:
            return [parser.parse(raw) for raw in raws]
        if executor is None:
            executor = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"))
        return list(executor.map(parser.parse, raws, chunksize=16))

    try:
        yield parse_many
    finally:
        if executor is not None:
            executor.shutdown()
