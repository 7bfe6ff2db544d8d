"""The blob store the app is configured with: a folder under instance/ (default) or the database.

``BLOB_STORE = "database"`` (``EMAILCONNECTOR_BLOB_STORE``) keeps the bytes in the ``blob`` table, for web
processes and workers on several machines that do not share a folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import delete, exists, func, select, union
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from webapp.adapters.storage.blobstore import BlobMissing, FolderBlobStore, sha256
from webapp.database import writes
from webapp.extensions import db
from webapp.models import Attachment, Blob, EmailMessage, FetchRun
from webapp.models.base import utcnow
from webapp.models.fetchrun import RunStatus

__all__ = ["BlobMissing", "Garbage", "collect_garbage", "get", "put", "sha256"]


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
    # Already stored: its time is renewed (under the row's lock), so a garbage collection running now
    # spares it until the rows naming it are committed.
    statement = insert(Blob).values(**values, created_at=utcnow())
    db.session.execute(
        statement.on_conflict_do_update(index_elements=["sha256"], set_={"created_at": statement.excluded.created_at})
    )
    return digest


def sync() -> None:
    """Flush the blobs stored with ``durable=False`` (the folder store; in the database the commit does it)."""
    if not _in_database():
        _folder_store().sync()


def get(digest: str) -> bytes:
    """The bytes of blob ``digest`` from the configured store; BlobMissing when they are not there."""
    if not _in_database():
        return _folder_store().get(digest)
    blob = db.session.get(Blob, digest)
    if blob is None:
        raise BlobMissing(digest)
    return blob.data


def thread_reader() -> Callable[[str], bytes] | None:
    """:func:`get` for another thread (no app context, no session): the folder store's own reader; None
    when blobs are in the database (then read them with :func:`get`)."""
    return None if _in_database() else _folder_store().get


def thread_writer() -> Callable[[bytes], str] | None:
    """:func:`put` with ``durable=False`` for other threads (no app context): the folder store's own
    writer, so that a batch can create its files while the caller goes on; None when blobs are in the
    database (they join the caller's transaction there)."""
    if _in_database():
        return None
    store = _folder_store()
    return lambda data: store.put(data, durable=False)


# Whatever the setting or the command line says: bytes stored this recently may belong to rows not
# committed yet (a message being sent, a batch of a fetch).
MIN_GRACE_SECONDS = 60


@dataclass(frozen=True)
class Garbage:
    count: int
    bytes: int
    dry_run: bool


@writes
def collect_garbage(*, dry_run: bool = False, grace_seconds: float | None = None) -> Garbage:
    """Remove the blobs no message or attachment names any more and none used within the grace period
    (``BLOB_GC_GRACE_SECONDS``: a fetch stores bytes shortly before the rows naming them)."""
    grace = current_app.config["BLOB_GC_GRACE_SECONDS"] if grace_seconds is None else grace_seconds
    cutoff = utcnow() - timedelta(seconds=max(float(grace), MIN_GRACE_SECONDS))
    # A fetch stores its batches' bytes before the rows naming them: nothing used since the oldest fetch
    # still running began is touched, however short the grace (a run dead for a day no longer counts).
    running = db.session.scalar(
        select(func.min(FetchRun.started_at)).where(
            FetchRun.status == RunStatus.RUNNING, FetchRun.started_at > utcnow() - timedelta(days=1)
        )
    )
    if running is not None:
        cutoff = min(cutoff, running)
    named = union(select(EmailMessage.raw_sha256), select(Attachment.sha256)).subquery()
    if _in_database():
        unused = select(Blob.sha256).where(Blob.created_at < cutoff).where(~exists().where(named.c[0] == Blob.sha256))
        found = db.session.execute(
            select(func.count(), func.coalesce(func.sum(Blob.size), 0)).where(Blob.sha256.in_(unused))
        ).one()
        if not dry_run:
            db.session.execute(delete(Blob).where(Blob.sha256.in_(unused)).execution_options(synchronize_session=False))
        db.session.commit()
        return Garbage(int(found[0]), int(found[1]), dry_run)
    referenced = {str(digest) for digest in db.session.scalars(select(named.c[0]))}
    db.session.commit()  # the folder walk may take a while: hold no transaction meanwhile
    count, size = _folder_store().collect(referenced, cutoff.timestamp(), dry_run=dry_run)
    return Garbage(count, size, dry_run)
