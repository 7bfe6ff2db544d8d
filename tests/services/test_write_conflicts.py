"""Writers at once: a replicating fetch in the worker while people read mail through the real web server.

On SQLite a deferred transaction that reads and then writes fails at once ("database is locked") when
another writer committed in between; the busy timeout does not help there. Every write must take the
write lock up front, so neither the readers nor the fetch ever fail because the other wrote. The same
test runs on PostgreSQL (lock waits, no lost updates).
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.webclient import WebClient
from webapp.extensions import db
from webapp.models import EmailMessage, User
from webapp.services.identity import setup
from webapp.services.receiving import fetchjobs

MESSAGE_LINK = re.compile(r'href="/messages/(\d+)"')


def _reader(base: str, statuses: Counter[int], seen: set[int], done: threading.Event, url: str) -> None:
    client = WebClient(base)
    client.login("boss")
    deadline = time.monotonic() + 600
    while not done.is_set() and time.monotonic() < deadline:
        status, page = client.get(url)
        statuses[status] += 1
        for ident in MESSAGE_LINK.findall(page)[:10]:
            if int(ident) in seen:
                continue
            status, _page = client.get(f"/messages/{ident}")  # an unread message: marks it read (a write)
            statuses[status] += 1
            seen.add(int(ident))


def test_readers_and_a_replicating_fetch_never_fail_each_other(
    make_account, make_user, dovecot: Dovecot, worker: Any, web_server: str
) -> None:
    count = 2000
    dovecot.deliver_many("alice", generated.mix(count))
    account = make_account(fetch_strategy="replicate", batch_size=50)
    make_user("boss", role="admin")
    job_id = fetchjobs.enqueue(account)

    statuses: Counter[int] = Counter()
    seen: set[int] = set()
    done = threading.Event()
    url = f"/accounts/{account.id}/mailbox"
    readers = [
        threading.Thread(target=_reader, args=(web_server, statuses, seen, done, url), daemon=True) for _ in range(4)
    ]
    for thread in readers:
        thread.start()
    result = fetchjobs.wait(job_id, timeout=600)
    done.set()
    for thread in readers:
        thread.join(timeout=120)

    assert result.state == "finished", (result.error, worker.log.read_text()[-3000:])
    assert result.summary["stored"] == count
    db.session.rollback()
    stored = db.session.scalar(select(func.count(EmailMessage.id)).where(EmailMessage.account_id == account.id))
    assert stored == count
    assert statuses and all(code < 500 for code in statuses), statuses
    assert len(seen) >= 20, "the readers opened too few messages to prove anything"
    read = db.session.scalar(
        select(func.count(EmailMessage.id)).where(EmailMessage.id.in_(seen), EmailMessage.seen.is_(True))
    )
    assert read == len(seen), "a message opened by a reader was not marked read"


def test_simultaneous_first_run_setups_create_one_admin(app, web_server: str) -> None:
    token = setup.issue_token()
    assert token
    results: list[tuple[int, str]] = []

    def attempt(index: int) -> None:
        client = WebClient(web_server)
        status, page = client.get("/setup")
        if status != 200:
            results.append((status, page))
            return
        fields = {
            "token": token,
            "username": f"admin{index}",
            "password": "a long password",
            "confirm": "a long password",
        }
        results.append(client.post("/setup", fields, page=page))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert len(results) == 8
    assert all(status < 500 for status, _ in results), [status for status, _ in results]
    db.session.rollback()
    assert db.session.scalar(select(func.count(User.id))) == 1
