"""A fetch is one service call with a history, and every way of starting it gets the same events.

Also: switching strategies never leaves mail behind, the summary says how much is on the server, a batch's
``fetch`` event carries complete messages, and an account never has two fetch jobs at once.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from typing import Any

import pytest
from flask import Flask
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import func, select

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.servers.webhookreceiver import Receiver
from webapp.extensions import db
from webapp.models import EmailMessage, FetchRun
from webapp.services.account import accounts
from webapp.services.events import webhooks
from webapp.services.platform import queues
from webapp.services.platform.redisconn import get_redis
from webapp.services.receiving import fetching, fetchjobs, fetchruns

SEEN: list[dict[str, Any]] = []


def remember_complete(batch: list[EmailMessage]) -> None:
    """An on_fetch callback that records what it could see of each message."""
    for message in batch:
        SEEN.append(
            {
                "id": message.id,
                "state": message.body_state,
                "text": message.text_body,
                "attachments": [a.filename for a in message.attachments],
            }
        )


def _update(account, **changes):
    return accounts.update(account, replace(accounts.settings_of(account), **changes))


def _count(account) -> int:
    return db.session.scalar(select(func.count(EmailMessage.id)).where(EmailMessage.account_id == account.id)) or 0


@pytest.mark.parametrize(
    "steps",
    [
        [("latest", "newest"), ("replicate", "newest")],
        [("latest", "oldest"), ("replicate", "newest")],
        [("latest", "newest"), ("latest", "oldest"), ("replicate", "oldest")],
        [("replicate", "newest"), ("latest", "newest"), ("replicate", "newest")],
    ],
)
@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_switching_to_replicate_backfills_whatever_is_not_stored(
    make_account, dovecot: Dovecot, steps: list[tuple[str, str]], protocol: str
) -> None:
    dovecot.deliver_many("alice", generated.mix(120))
    port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
    account = make_account(incoming_protocol=protocol, incoming_port=port, fetch_count=30, batch_size=25)
    stored = 0
    for strategy, order in steps:
        account = _update(account, fetch_strategy=strategy, fetch_order=order)
        summary = fetching.fetch(account)
        assert summary.total_on_server == 120
        stored += summary.stored
        assert _count(account) == stored
        if strategy == "latest":
            assert summary.total == 30
    assert stored == 120  # the last step replicated: everything, exactly once
    assert fetching.fetch(account).stored == 0


def test_a_run_records_its_history_and_the_job_status_outlives_rq(make_account, dovecot: Dovecot) -> None:
    dovecot.deliver_many("alice", generated.mix(7))
    account = make_account(fetch_count=5)
    job_id = fetchjobs.enqueue(account)
    assert SimpleWorker([queues.queue(queues.FETCH)], connection=get_redis(), serializer=JSONSerializer).work(
        burst=True
    )
    (run,) = fetchruns.last_runs(account)
    assert (run.status, run.trigger, run.job_id) == ("finished", "page", job_id)
    assert (run.stored, run.total, run.total_on_server) == (5, 5, 7)
    assert run.ended_at is not None and run.ended_at >= run.started_at

    get_redis().delete(f"rq:job:{job_id}")  # RQ expired the job and its result
    status = fetchjobs.status(job_id)
    assert (status.state, status.summary["stored"], status.summary["total_on_server"]) == ("finished", 5, 7)

    failing = make_account(name="Broken", incoming_port=1)
    with pytest.raises(Exception, match="refused"):
        fetchruns.run(failing)
    (failed,) = fetchruns.last_runs(failing)
    assert failed.status == "failed" and "refused" in failed.error


def test_a_run_left_running_by_a_dead_process_is_closed_by_the_next(make_account, dovecot: Dovecot) -> None:
    account = make_account()
    from webapp.database import write_transaction

    with write_transaction():
        db.session.add(FetchRun(account_id=account.id, trigger="command", status="running"))
        db.session.commit()
    fetchruns.run(account)
    runs = fetchruns.last_runs(account)
    assert [r.status for r in runs] == ["finished", "failed"]
    assert "interrupted" in runs[1].error


def test_each_batch_event_carries_complete_messages_in_batch_order(make_account, dovecot: Dovecot) -> None:
    SEEN.clear()
    corpus = [generated.make(i, "attachment" if i % 2 else "text") for i in range(9)]
    dovecot.deliver_many("alice", corpus)
    account = make_account(fetch_strategy="replicate", batch_size=4)
    receiver = Receiver()
    try:
        webhooks.add_webhook(account, receiver.url("/hook"), ["fetch", "complete"])
        fetchruns.run(account, on_fetch=f"{__name__}.remember_complete")
        bodies = [json.loads(r.body) for r in receiver.requests]
    finally:
        receiver.close()
    assert [m["state"] for m in SEEN] == ["parsed"] * 9
    assert all(m["text"] for m in SEEN)
    assert sum(1 for m in SEEN if m["attachments"]) == 4
    assert [m["id"] for m in SEEN] == sorted(m["id"] for m in SEEN)  # batch order
    assert [b["event"] for b in bodies] == ["fetch", "fetch", "fetch", "complete"]
    messages = [m for b in bodies[:3] for m in b["messages"]]
    assert [len(b["messages"]) for b in bodies[:3]] == [4, 4, 1]
    assert all(m["text"] for m in messages) and sum(1 for m in messages if m["attachments"]) == 4


def test_one_fetch_job_per_account_however_many_ask_at_once(app: Flask, make_account, make_app) -> None:
    account = make_account()
    account_id = account.id
    ids: list[str] = []
    # Other processes' apps, each with its Redis client; made here, one after the other: Python 3.11's
    # ast (werkzeug compiles the URL rules with it) is not safe to use from several threads at once.
    others = [make_app() for _ in range(6)]

    def ask(other: Flask) -> None:
        with other.app_context():
            ids.append(fetchjobs.enqueue(accounts.by_id(account_id)))

    threads = [threading.Thread(target=ask, args=(other,)) for other in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(ids) == 6 and len(set(ids)) == 1
    assert queues.queue(queues.FETCH).count == 1
    assert fetchjobs.current(account) == ids[0]
