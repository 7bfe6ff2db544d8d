"""The folder blob store under concurrent use."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from webapp.adapters.storage.blobstore import FolderBlobStore


def test_garbage_collection_while_blobs_are_written(tmp_path: Path) -> None:
    # A writer's temporary file is listed by the collection, then renamed into place before it is looked
    # at: the collection must pass over it, not fail (it failed removing an account during a fetch).
    store = FolderBlobStore(tmp_path)
    for prefix in range(256):
        (tmp_path / f"{prefix:02x}").mkdir()
    stop = threading.Event()
    written: list[str] = []

    def write() -> None:
        while not stop.is_set():
            written.append(store.put(os.urandom(16), durable=False))

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _round in range(200):
            assert store.collect(set(), older_than=0) == (0, 0)  # nothing is old enough to go
    finally:
        stop.set()
        writer.join()
    assert written and all(store.exists(digest) for digest in written)
