"""`email-connector blobs gc --grace 0` while a fetch stores bytes it has not committed yet."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from webapp.extensions import db
from webapp.models import EmailMessage
from webapp.services.platform import blobs

EXE = Path(sys.executable).with_name("email-connector")


def _missing(account_id: int) -> list[str]:
    db.session.rollback()
    digests = db.session.scalars(select(EmailMessage.raw_sha256).where(EmailMessage.account_id == account_id))
    root = blobs.folder_root()
    return [d for d in digests if not (root / d[:2] / d).exists()]


def test_gc_grace_zero_between_a_batch_download_and_its_commit(
    app: Flask, make_account, dovecot: Dovecot, worker_env: dict
) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("the deterministic window uses a PostgreSQL table lock")
    dovecot.deliver_many("alice", generated.mix(20))
    account = make_account(fetch_strategy="replicate", batch_size=20)
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    with engine.connect() as locker:
        locker.execute(text("BEGIN"))
        locker.execute(text("LOCK TABLE email_message IN EXCLUSIVE MODE"))  # SELECTs go on; INSERTs wait
        fetch = subprocess.Popen(
            [str(EXE), "fetch", "Work", "--inline", "--json"],
            env=worker_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60
        waiting = 0
        while time.monotonic() < deadline and not waiting:
            with engine.connect() as probe:
                waiting = probe.execute(
                    text(
                        "select count(*) from pg_locks l join pg_class c on c.oid = l.relation "
                        "where c.relname = 'email_message' and not l.granted"
                    )
                ).scalar()
            time.sleep(0.1)
        assert waiting, "the fetch never reached its insert"
        gc = subprocess.run(
            [str(EXE), "blobs", "gc", "--grace", "0", "--json"],
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        locker.execute(text("COMMIT"))
    out, err = fetch.communicate(timeout=120)
    engine.dispose()
    missing = _missing(account.id)
    assert not missing, (
        f"gc said {gc.stdout.strip()} {gc.stderr.strip()}; fetch said {out.strip()[:300]} {err[-300:]}; "
        f"{len(missing)} stored messages have no bytes"
    )


def test_gc_grace_zero_looping_during_a_fetch(app: Flask, make_account, dovecot: Dovecot, worker_env: dict) -> None:
    dovecot.deliver_many("alice", generated.mix(1500))
    account = make_account(fetch_strategy="replicate", batch_size=100)
    fetch = subprocess.Popen(
        [str(EXE), "fetch", "Work", "--inline", "--json"],
        env=worker_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    runs = 0
    while fetch.poll() is None and runs < 200:
        subprocess.run([str(EXE), "blobs", "gc", "--grace", "0"], env=worker_env, capture_output=True, timeout=60)
        runs += 1
    out, err = fetch.communicate(timeout=300)
    missing = _missing(account.id)
    assert not missing, (
        f"{len(missing)} stored messages lost their bytes to {runs} gc runs; fetch: {out[:200]} {err[-300:]}"
    )


def test_pages_of_a_message_whose_bytes_are_gone(app: Flask, make_account, make_user, dovecot: Dovecot) -> None:
    """What the loss above leads to: a message listed, its bytes gone (not yet parsed, as after a fetch)."""
    from tests.review.helpers import client_as
    from webapp.services.reading import messages
    from webapp.services.receiving import fetching

    dovecot.deliver("alice", generated.make(1, "attachment"))
    account = make_account()
    fetching.fetch(account, parse=False) if "parse" in fetching.fetch.__code__.co_varnames else fetching.fetch(account)
    (message,) = messages.listing(account)
    root = blobs.folder_root()
    (root / message.raw_sha256[:2] / message.raw_sha256).unlink()
    make_user("boss", role="admin")
    client = client_as(app, "boss")
    statuses = {
        url: client.get(url).status_code
        for url in (f"/accounts/{account.id}/mailbox", f"/messages/{message.id}", f"/messages/{message.id}/raw")
    }
    assert all(code < 500 for code in statuses.values()), statuses
