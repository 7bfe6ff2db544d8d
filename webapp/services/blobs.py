"""The blob store the app is configured with: a folder under instance/ (default) or the database.

``BLOB_STORE = "database"`` (``EMAILCONNECTOR_BLOB_STORE``) keeps the bytes in the ``blob`` table, for web
processes and workers on several machines that do not share a folder.
"""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from webapp.adapters.blobstore import BlobMissing, FolderBlobStore, sha256
from webapp.extensions import db
from webapp.models import Blob

__all__ = ["BlobMissing", "get", "put", "sha256"]


def _folder_store() -> FolderBlobStore:
    return FolderBlobStore(Path(current_app.instance_path) / "blobs")


def folder_root() -> Path | None:
    """The blob folder, or None when blobs live in the database."""
    return None if _in_database() else Path(current_app.instance_path) / "blobs"


def _in_database() -> bool:
    return current_app.config.get("BLOB_STORE", "folder") == "database"


def put(data: bytes, *, durable: bool = True) -> str:
    """Store ``data`` once and return its SHA-256; in the database it joins the caller's transaction.

    ``durable=False``: call :func:`sync` before committing rows that name the blob (one flush a batch).
    """
    if not _in_database():
        return _folder_store().put(data, durable=durable)
    digest = sha256(data)
    values = {"sha256": digest, "size": len(data), "data": data}
    dialect = db.session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    db.session.execute(insert(Blob).values(**values).on_conflict_do_nothing(index_elements=["sha256"]))
    return digest


def sync() -> None:
    if not _in_database():
        FolderBlobStore.sync()


def get(digest: str) -> bytes:
    if not _in_database():
        return _folder_store().get(digest)
    blob = db.session.get(Blob, digest)
    if blob is None:
        raise BlobMissing(digest)
    return blob.data
