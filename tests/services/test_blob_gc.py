"""Bytes nobody names any more leave the blob store: after an account is removed, by the hourly sweep and
by `email-connector blobs gc`; bytes another message shares, or a fetch is about to commit, stay."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select, update

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from webapp.adapters.storage.blobstore import FolderBlobStore
from webapp.database import write_transaction
from webapp.extensions import db
from webapp.models import Attachment, Blob, EmailMessage
from webapp.models.base import utcnow
from webapp.services.account import accounts
from webapp.services.platform import blobs
from webapp.services.reading import messages
from webapp.services.receiving import fetching


def _digests(account) -> set[str]:
    raw = db.session.scalars(select(EmailMessage.raw_sha256).where(EmailMessage.account_id == account.id))
    parts = db.session.scalars(
        select(Attachment.sha256).join(EmailMessage).where(EmailMessage.account_id == account.id)
    )
    return set(raw) | set(parts)


def age_blobs(app: Flask, seconds: float = 7200) -> None:
    """Make every stored blob look last used ``seconds`` ago (the grace period never goes below a minute)."""
    if app.config["BLOB_STORE"] == "database":
        with write_transaction():
            db.session.execute(update(Blob).values(created_at=utcnow() - timedelta(seconds=seconds)))
        return
    then = time.time() - seconds
    for path in blobs.folder_root().glob("??/*"):
        os.utime(path, (then, then))


def _stored(app: Flask, digest: str) -> bool:
    if app.config["BLOB_STORE"] == "database":
        return db.session.get(Blob, digest) is not None
    return (blobs.folder_root() / digest[:2] / digest).exists()


@pytest.mark.parametrize("where", ["folder", "database"])
def test_removing_an_account_removes_the_bytes_only_it_named(
    app: Flask, make_account, dovecot: Dovecot, mail_user, where: str
) -> None:
    app.config.update(BLOB_STORE=where, BLOB_GC_GRACE_SECONDS=0)
    shared = generated.make(1, "attachment")
    dovecot.deliver_many("alice", [shared, generated.make(2, "attachment"), generated.make(3, "html")])
    dovecot.add_user("bob", "bob-mail-pw")
    dovecot.deliver("bob", shared)
    gone = make_account(name="Gone", fetch_strategy="replicate")
    kept = make_account(name="Kept", username="bob", password="bob-mail-pw", fetch_strategy="replicate")
    assert fetching.fetch(gone).stored == 3 and fetching.fetch(kept).stored == 1
    gone_digests, kept_digests = _digests(gone), _digests(kept)
    assert kept_digests <= gone_digests and len(gone_digests) > len(kept_digests)
    age_blobs(app)

    accounts.remove(gone)
    db.session.rollback()
    assert all(_stored(app, d) for d in kept_digests)
    assert not any(_stored(app, d) for d in gone_digests - kept_digests)
    (message,) = messages.listing(kept)
    assert messages.raw_bytes(message) == shared  # the shared bytes are still readable


def test_the_grace_period_spares_bytes_a_fetch_has_not_committed_yet(app: Flask, tmp_path) -> None:
    store = FolderBlobStore(tmp_path)
    old, fresh, reused = store.put(b"old"), store.put(b"fresh"), store.put(b"reused")
    long_ago = time.time() - 7200
    for digest in (old, reused):
        os.utime(store.path(digest), (long_ago, long_ago))
    store.put(b"reused")  # a fetch stores the same bytes again: they count as used now
    assert store.collect(set(), time.time() - 3600, dry_run=True) == (1, 3)
    assert store.collect(set(), time.time() - 3600) == (1, 3)
    assert not store.exists(old) and store.exists(fresh) and store.exists(reused)
    assert store.collect({fresh, reused}, time.time() + 10) == (0, 0)  # named ones stay, however old
