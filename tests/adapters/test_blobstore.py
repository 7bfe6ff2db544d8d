"""The folder blob store under concurrent use."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from webapp.adapters.storage.blobstore import FolderBlobStore

BLOBS = 3000


def test_garbage_collection_while_blobs_are_written(tmp_path: Path) -> None:
    # A writer's temporary file is listed by the collection, then renamed into place before it is looked
    # at: the collection must pass over it, not fail (it failed removing an account during a fetch).
    # Few folders, so each listing is short and many fall inside a write; the writer stops by itself.
    store = FolderBlobStore(tmp_path)
    written: list[str] = []
    failures: list[BaseException] = []

    def write() -> None:
        for _ in range(BLOBS):
            written.append(store.put(os.urandom(16), durable=False))

    writer = threading.Thread(target=write)
    writer.start()
    rounds = 0
    try:
        while writer.is_alive():
            try:
                assert store.collect(set(), older_than=0) == (0, 0)  # nothing is old enough to go
            except FileNotFoundError as error:
                failures.append(error)
                break
            rounds += 1
    finally:
        writer.join()
    assert not failures, f"the collection failed after {rounds} rounds: {failures[0]!r}"
    assert len(written) == BLOBS and all(store.exists(digest) for digest in written)
