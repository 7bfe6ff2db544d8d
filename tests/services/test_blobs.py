"""The content-addressed blob store: in a folder under instance/, or in the database."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from flask import Flask

from webapp.adapters.storage.blobstore import FolderBlobStore
from webapp.extensions import db
from webapp.models import Blob
from webapp.services.platform import blobs


def test_folder_store_keeps_equal_bytes_once(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path)
    digest = store.put(b"hello")
    assert digest == hashlib.sha256(b"hello").hexdigest()
    assert store.put(b"hello") == digest
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [digest]
    assert store.get(digest) == b"hello"
    with pytest.raises(blobs.BlobMissing):
        store.get("0" * 64)
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


@pytest.mark.parametrize("where", ["folder", "database"])
def test_configured_store_round_trips(app: Flask, where: str) -> None:
    app.config["BLOB_STORE"] = where
    data = b"\x00attachment bytes" * 1000
    digest = blobs.put(data)
    blobs.put(data)
    db.session.commit()
    assert blobs.get(digest) == data
    in_db = db.session.query(Blob).count()
    assert in_db == (1 if where == "database" else 0)
    if where == "folder":
        assert (Path(app.instance_path) / "blobs" / digest[:2] / digest).read_bytes() == data
    with pytest.raises(blobs.BlobMissing):
        blobs.get("f" * 64)
