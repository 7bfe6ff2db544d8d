"""Callbacks of a fetch: dotted paths in the worker, and signed webhooks with retries."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.servers.ports import free_port
from webapp.adapters import webhook
from webapp.database import write_transaction
from webapp.extensions import db
from webapp.models import Delivery, EmailMessage
from webapp.models.base import utcnow
from webapp.services.account import errorlog
from webapp.services.errors import Invalid
from webapp.services.events import callbacks, dispatch, webhooks
from webapp.services.receiving import fetchjobs, fetchruns

CALLS: list[Any] = []


def remember(batch: list[EmailMessage]) -> None:
    CALLS.append([m.subject for m in batch])


def explode(batch: list[EmailMessage]) -> None:
    from webapp.models import AppSetting

    db.session.add(AppSetting(key="written-by-a-failing-callback", value="x"))
    db.session.flush()
    raise RuntimeError("callback broke")


class Receiver(http.server.ThreadingHTTPServer):
    bodies: list[tuple[dict[str, str], bytes]]
    status: int


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.server.bodies.append(({k.lower(): v for k, v in self.headers.items()}, body))  # type: ignore[attr-defined]
            self.send_response(self.server.status)  # type: ignore[attr-defined]
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = Receiver(("127.0.0.1", free_port()), Handler)
    server.bodies, server.status = [], 200
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_signature_format_and_verification() -> None:
    header = webhook.sign("s3cret", b'{"a":1}', 1_700_000_000)
    assert header.startswith("t=1700000000,v1=") and len(header.split("v1=")[1]) == 64
    assert webhook.verify("s3cret", b'{"a":1}', header, now=1_700_000_100)
    assert not webhook.verify("s3cret", b'{"a":2}', header, now=1_700_000_100)
    assert not webhook.verify("other", b'{"a":1}', header, now=1_700_000_100)
    assert not webhook.verify("s3cret", b'{"a":1}', header, now=1_700_001_000)  # too old: a replay


def test_webhooks_receive_each_batch_signed_then_the_summary(make_account, dovecot: Dovecot, receiver) -> None:
    dovecot.deliver_many("alice", generated.mix(5))
    account = make_account(fetch_strategy="replicate", batch_size=2)
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    _hook, secret = webhooks.add_webhook(account, url)
    fetchruns.run(account)

    events = []
    for headers, body in receiver.bodies:
        assert webhook.verify(secret, body, headers["x-emailconnector-signature"])
        payload = json.loads(body)
        assert headers["x-emailconnector-delivery"] == payload["delivery_id"]
        events.append(payload)
    assert [e["event"] for e in events] == ["fetch", "fetch", "fetch", "complete"]
    assert sum(len(e["messages"]) for e in events[:3]) == 5
    assert events[3]["summary"]["stored"] == 5
    assert {m["sha256"] for e in events[:3] for m in e["messages"]} == set(
        db.session.scalars(select(EmailMessage.raw_sha256))
    )
    assert all(d.status == "delivered" for d in db.session.scalars(select(Delivery)))


def test_a_failing_webhook_is_retried_with_backoff_and_logged(make_account, dovecot: Dovecot, receiver) -> None:
    dovecot.deliver_many("alice", generated.mix(2))
    account = make_account()
    webhooks.add_webhook(account, f"http://127.0.0.1:{receiver.server_address[1]}/hook", ["fetch"])
    receiver.status = 503
    assert fetchruns.run(account).stored == 2  # no message lost
    (delivery,) = db.session.scalars(select(Delivery))
    assert (delivery.status, delivery.attempts) == ("pending", 1) and "503" in delivery.last_error
    assert delivery.next_attempt_at > utcnow() + timedelta(seconds=20)
    assert dispatch.deliver_due() == 0  # not due yet: no tight loop

    receiver.status = 200
    with write_transaction():  # the test's own write, as a service would
        delivery.next_attempt_at = utcnow()
        db.session.commit()
    assert dispatch.deliver_due() == 1
    assert len(receiver.bodies) == 2
    assert receiver.bodies[0][1] == receiver.bodies[1][1]  # the same delivery, the same id

    callbacks.failed(account, "boom", None)
    assert db.session.scalars(select(Delivery).where(Delivery.event == "error")).all() == []  # it asked for "fetch"

    receiver.status = 410  # gone: a permanent failure, given up at once and logged
    dovecot.deliver_many("alice", generated.mix(1, seed=3))
    fetchruns.run(account)
    failed = db.session.scalars(select(Delivery).where(Delivery.status == "failed")).one()
    assert failed.attempts == 1 and "410" in failed.last_error
    (entry,) = [e for e in errorlog.entries(account) if e.operation == "callback"]
    assert "fetch delivery to http://127.0.0.1" in entry.message


def test_a_dotted_callback_sees_each_batch_and_a_failing_one_loses_nothing(make_account, dovecot: Dovecot) -> None:
    CALLS.clear()
    dovecot.deliver_many("alice", generated.mix(4))
    account = make_account(fetch_strategy="replicate", batch_size=3)
    fetchruns.run(account, on_fetch=f"{__name__}.remember")
    assert [len(batch) for batch in CALLS] == [3, 1]

    other = make_account(name="Other", fetch_strategy="replicate")
    summary = fetchruns.run(other, on_fetch=f"{__name__}.explode")
    assert summary.stored == 4
    from webapp.models import AppSetting

    assert db.session.get(AppSetting, "written-by-a-failing-callback") is None  # its writes were undone
    (delivery,) = db.session.scalars(select(Delivery).where(Delivery.account_id == other.id))
    assert delivery.status == "pending" and "callback broke" in delivery.last_error


def test_callbacks_are_checked_when_queued(make_account) -> None:
    account = make_account()
    with pytest.raises(Invalid, match="dotted path"):
        fetchjobs.enqueue(account, on_fetch="not a path!")
    with pytest.raises(Invalid, match="not a webhook of this account"):
        fetchjobs.enqueue(account, on_complete="http://127.0.0.1:9/x")
    assert fetchjobs.enqueue(account, on_fetch=f"{__name__}.remember")


def test_the_schedule_queues_due_accounts_once_per_interval(make_account) -> None:
    from webapp.services import schedule

    every = make_account(name="Every5", fetch_every_minutes=5)
    make_account(name="Never")
    first = schedule.run_due(now=1_000_000)
    assert first.queued == ["Every5"]
    fetchjobs.release(every.id, fetchjobs.enqueue(every))  # as if the job ran and finished
    assert schedule.run_due(now=1_000_000 + 120).queued == []
    assert schedule.run_due(now=1_000_000 + 300).queued == ["Every5"]
