"""Readers opening messages while the worker parses their bodies (the step after the download):
a message opened early is parsed on the spot — by the page and by the worker at once?"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from typing import Any

from sqlalchemy import create_engine, func, select, text

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.webclient import WebClient
from webapp.extensions import db
from webapp.models import Attachment, EmailMessage
from webapp.services.receiving import fetchjobs

LINK = re.compile(r'href="/messages/(\d+)')


def test_pages_and_the_worker_parsing_the_same_messages(
    make_account, make_user, dovecot: Dovecot, worker: Any, web_server: str
) -> None:
    count = 1500
    dovecot.deliver_many("alice", [generated.make(i, "attachment") for i in range(count)])
    account = make_account(fetch_strategy="replicate", batch_size=500)
    make_user("boss", role="admin")
    statuses: Counter[int] = Counter()
    engine = create_engine(db.engine.url)
    done = threading.Event()
    opened: set[int] = set()

    def reader(offset: int) -> None:
        client = WebClient(web_server)
        client.login("boss")
        deadline = time.monotonic() + 300
        while not done.is_set() and time.monotonic() < deadline:
            with engine.connect() as conn:
                ids = [
                    r[0]
                    for r in conn.execute(
                        text("select id from email_message where body_state = 'pending' order by id limit 400")
                    )
                ]
            # the smallest pending ids are the ones the worker parses right now
            for ident in ids[offset::4][:25]:
                status, _ = client.get(f"/messages/{ident}")
                statuses[status] += 1
                opened.add(ident)

    threads = [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(4)]
    job = fetchjobs.enqueue(account)
    for t in threads:
        t.start()
    try:
        result = fetchjobs.wait(job, timeout=600)
    finally:
        done.set()
        for t in threads:
            t.join(timeout=120)
        # Its pooled connections closed now: left to the garbage collector, PostgreSQL's would warn in
        # whichever later test the collector happens to run (it failed CI in test_removal).
        engine.dispose()
    db.session.rollback()
    dupes = db.session.execute(
        select(Attachment.message_id, Attachment.position, func.count())
        .join(EmailMessage)
        .where(EmailMessage.account_id == account.id)
        .group_by(Attachment.message_id, Attachment.position)
        .having(func.count() > 1)
    ).all()
    if dupes:
        client = WebClient(web_server)
        client.login("boss")
        page = client.get(f"/messages/{dupes[0][0]}")[1]
        print("attachment links on the page of message", dupes[0][0], ":", len(re.findall(r'/attachments/\d+"', page)))
    report = f"job {result.state} {result.error} {result.summary}; statuses {dict(statuses)}; opened {len(opened)}; duplicated parts {len(dupes)}"
    print(report)
    assert result.state == "finished", report + worker.log.read_text()[-2000:]
    assert all(code < 500 for code in statuses), report
    assert not dupes, report
