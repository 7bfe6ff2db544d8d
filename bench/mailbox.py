"""Server time of the mailbox page with 100,000 stored messages: the first page, a deep page, a search.

    .venv/bin/python -m bench.mailbox [--messages 100000]     # SQLite
    DATABASE_URL=postgresql://… REDIS_URL=redis://… .venv/bin/python -m bench.mailbox

Rows are inserted directly (with their search index), as a replication would leave them; the pages are
then requested through the app (login, CSRF, templates: the whole server side) and timed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select

from tests.servers import database as test_database
from tests.servers import redis as test_redis

WORDS = [f"word{i}" for i in range(5000)] + ["invoice", "meeting", "report", "Köln", "urgent"]


def seed(count: int) -> int:
    from webapp.extensions import db
    from webapp.models import EmailMessage
    from webapp.services.account import accounts
    from webapp.services.account.accounts import AccountSettings
    from webapp.services.reading import search

    account = accounts.create(
        AccountSettings(
            name="Bench", address="alice@example.test", username="alice", password="x", incoming_protocol="imap",
            incoming_security="tls", incoming_host="127.0.0.1", incoming_port=993, outgoing_host="127.0.0.1",
            outgoing_port=25, outgoing_security="none",
        )
    )  # fmt: skip
    account_id = int(account.id)
    rng = random.Random(7)
    start = datetime(2020, 1, 1, tzinfo=UTC)
    for first in range(0, count, 5000):
        rows = []
        for index in range(first, min(count, first + 5000)):
            at = start + timedelta(minutes=index)
            rows.append(
                {
                    "account_id": account_id, "folder": "INBOX", "uidvalidity": 1, "uid": index + 1,
                    "subject": " ".join(rng.choices(WORDS, k=6)), "from_name": f"Sender {index % 997}",
                    "from_address": f"sender{index % 997}@example.test", "to": [], "cc": [], "bcc": [],
                    "reply_to": [], "date": at, "received_at": at, "sort_at": at, "size": 5000,
                    "raw_sha256": f"{index:064x}", "text_body": " ".join(rng.choices(WORDS, k=80)),
                    "seen": rng.random() < 0.7, "has_attachments": rng.random() < 0.2, "body_state": "parsed",
                }
            )  # fmt: skip
        ids = db.session.execute(insert(EmailMessage).returning(EmailMessage.id), rows).scalars().all()
        search.index(list(db.session.scalars(select(EmailMessage).where(EmailMessage.id.in_(ids)))))
        db.session.commit()
        db.session.expunge_all()
    return account_id


def timed(client: object, url: str, runs: int = 15) -> float:
    """Median milliseconds of ``runs`` requests (after one warm-up)."""
    client.get(url)  # type: ignore[attr-defined]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)  # type: ignore[attr-defined]
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="ecm-"))
    os.environ["EMAILCONNECTOR_INSTANCE_PATH"] = str(folder / "instance")
    database = test_database.create(folder)
    redis = test_redis.start(folder)
    try:
        from flask_migrate import upgrade

        from webapp import create_app
        from webapp.adapters.storage.secretbox import generate_key
        from webapp.services.identity import users
        from webapp.services.receiving import store

        app = create_app({"DATABASE_URL": database.url, "REDIS_URL": redis.url, "SECRET_KEY": "b" * 40,
                          "ENCRYPTION_KEYS": generate_key(), "WTF_CSRF_ENABLED": False})  # fmt: skip
        with app.app_context():
            upgrade()
            account_id = seed(args.messages)
            store.refresh_statistics()  # as a fetch of that many messages does (services/fetching.py)
            users.create("bench", "bench password 1", "admin")
        client = app.test_client()
        client.post("/login", data={"username": "bench", "password": "bench password 1"})
        base = f"/accounts/{account_id}/mailbox"
        page = client.get(base).get_data(as_text=True)
        cursor = page.split('rel="next" href="')[1].split('"')[0].replace("&amp;", "&")
        report = {
            "messages": args.messages,
            "database": "postgresql" if database.is_postgres else "sqlite",
            "first_page_ms": round(timed(client, base), 1),
            "next_page_ms": round(timed(client, cursor), 1),
            "search_word_ms": round(timed(client, base + "?q=invoice"), 1),
            "search_two_words_ms": round(timed(client, base + "?q=urgent+meeting"), 1),
            "search_sender_ms": round(timed(client, base + "?q=sender42"), 1),
            "unread_ms": round(timed(client, base + "?unread=1"), 1),
        }
        print(json.dumps(report, indent=2))
    finally:
        redis.stop()
        database.drop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
