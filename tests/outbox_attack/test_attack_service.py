"""Attacks on the outbox services: cancel round trips, leases vs. the rate limit, JSONL oddities."""

from __future__ import annotations

import email
import json
import threading
import time
from collections import Counter
from email.policy import default
from pathlib import Path

import pytest

from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage
from webapp.models.message import MessageStatus
from webapp.services.errors import Invalid
from webapp.services.outgoing import delivery, drafts, outbox
from webapp.services.outgoing.sending import Draft, OutgoingAttachment


def _ids(smtp: SmtpServer) -> Counter[str]:
    with smtp.lock:
        return Counter(str(email.message_from_bytes(r.data, policy=default)["Message-ID"]) for r in smtp.received)


def test_cancel_of_a_bulk_queued_message_keeps_its_body_and_attachment(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    item = Draft(
        to="a@example.test", subject="Bulk", text="The body text\n", attachments=(OutgoingAttachment("n.txt", b"note"),)
    )
    assert outbox.enqueue_many(account, [(item, None)]) == (1, 0)
    (queued,) = outbox.listing(account, "queued")
    cancelled = outbox.cancel(account, queued.id)
    fields = drafts.draft_of_fields(cancelled)
    draft = drafts.draft_of(cancelled)
    print("fields:", fields, "attachments:", [a.filename for a in draft.attachments])
    assert "The body text" in fields["text"], fields
    assert [a.filename for a in draft.attachments] == ["n.txt"]


def test_cancel_of_a_queued_reply_keeps_its_threading(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    queued = outbox.enqueue(
        account,
        Draft(
            to="a@example.test",
            subject="Re: x",
            text="t",
            in_reply_to="<one@example.test>",
            references="<zero@example.test> <one@example.test>",
        ),
    )
    cancelled = outbox.cancel(account, queued.id)
    fields = drafts.draft_of_fields(cancelled)
    print(fields)
    requeued = drafts.queue(account, cancelled.id)
    outbox.send_queued()
    parsed = email.message_from_bytes(smtp.received[-1].data, policy=default)
    assert parsed["In-Reply-To"] == "<one@example.test>", (fields, str(parsed))
    assert requeued


def test_a_partly_delivered_message_cannot_be_cancelled_into_a_draft_that_resends(
    make_account, smtp: SmtpServer
) -> None:
    account = make_account()
    smtp.refuse = {"b@example.test": "550 no such user"}
    queued = outbox.enqueue(account, Draft(to="a@example.test; b@example.test", subject="Partly", text="t"))
    outbox.send_queued()
    db.session.rollback()
    failed = db.session.get(EmailMessage, queued.id)
    assert failed.status == MessageStatus.FAILED and failed.accepted == ["a@example.test"]
    with pytest.raises(Invalid, match="already went to a@example.test"):
        outbox.cancel(account, failed.id)
    smtp.refuse = {}
    outbox.retry(account, [failed.id])
    outbox.send_queued()
    rcpts = Counter(r for rec in smtp.received for r in rec.rcpt_tos)
    assert rcpts == Counter({"a@example.test": 1, "b@example.test": 1}), rcpts


def test_rate_limit_longer_than_the_lease_sends_twice(make_account, make_app, smtp: SmtpServer, app) -> None:
    """send_connections=1, send_per_minute=20 -> 3 s between messages; lease 2 s (as 6 connections at
    1/min against the default 300 s lease: 360 s between messages)."""
    account = make_account(send_per_minute=20)
    for n in range(3):
        outbox.enqueue(account, Draft(to=f"r{n}@example.test", subject=f"M{n}", text="x"), nudge_worker=False)
    app.config["SEND_LEASE_SECONDS"] = 2
    other = make_app(SEND_LEASE_SECONDS=2)
    account_id = account.id
    errors: list[BaseException] = []

    def worker_a() -> None:
        try:
            with other.app_context():
                acc = db.session.get(EmailAccount, account_id)
                delivery.drain(acc)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=worker_a)
    thread.start()
    time.sleep(2.4)  # A sent M0 and sleeps 3 s for the rate limit; its leases (2 s) have expired
    outbox.send_queued()  # the scheduler's pass / cron: sweep, then drain
    thread.join(30)
    counts = _ids(smtp)
    print(counts, errors)
    assert not errors
    assert all(c == 1 for c in counts.values()), counts


def test_jsonl_oddities(run, make_account, smtp: SmtpServer, tmp_path: Path) -> None:
    make_account()
    cases = {
        "bom": b"\xef\xbb\xbf" + json.dumps({"to": "a@example.test", "subject": "S", "body": "b"}).encode() + b"\n",
        "latin1": '{"to": "a@example.test", "subject": "caf\xe9", "body": "b"}\n'.encode("latin-1"),
        "surrogate_subject": b'{"to": "a@example.test", "subject": "x\\ud800y", "body": "b"}\n',
        "surrogate_to": b'{"to": "a\\ud800@example.test", "subject": "s", "body": "b"}\n',
        "surrogate_key": b'{"to": "a@example.test", "subject": "s", "body": "b", "key": "k\\ud800"}\n',
        "surrogate_name": b'{"to": "A\\ud800 <a@example.test>", "subject": "s", "body": "b"}\n',
        "surrogate_attachment": b'{"to": "a@example.test", "subject": "s", "body": "b", "attachments": ["x\\ud800.txt"]}\n',  # noqa: E501
        "nul_attachment": b'{"to": "a@example.test", "subject": "s", "body": "b", "attachments": ["x\\u0000.txt"]}\n',
        "nested": b'{"to": {"a": 1}, "subject": "s", "body": "b"}\n',
        "deep": b"[" * 100000 + b"]" * 100000 + b"\n",
        "bigkey": json.dumps({"to": "a@example.test", "subject": "s", "body": "b", "key": "k" * 10000}).encode()
        + b"\n",
        "dir_attachment": json.dumps(
            {"to": "a@example.test", "subject": "s", "body": "b", "attachments": ["."]}
        ).encode()
        + b"\n",
        "dup_keys_in_obj": b'{"to": "a@example.test", "to": "b@example.test", "subject": "s", "body": "b"}\n',
        "huge_number": b'{"to": "a@example.test", "subject": "s", "body": "b", "key": 1' + b"0" * 5000 + b"}\n",
        "nan": b'{"to": "a@example.test", "subject": NaN, "body": "b"}\n',
        "crlf_subject": b'{"to": "a@example.test", "subject": "a\\r\\nBcc: x@evil.test", "body": "b"}\n',
        "encoded_crlf_subject": b'{"to": "a@example.test", "subject": "=?utf-8?q?a=0D=0ABcc:_x@evil.test?=", "body": "b"}\n',  # noqa: E501
    }
    outcomes = {}
    for name, content in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(content)
        result = run("send", "--account", "Work", "--queue", "--from-jsonl", str(path), "--json")
        outcomes[name] = (
            result.exit_code,
            (result.stdout + result.stderr)[-300:],
            repr(result.exception)[:200] if result.exception and not isinstance(result.exception, SystemExit) else "",
        )
    for k, v in outcomes.items():
        print(k, v)
    tracebacks = {k: v for k, v in outcomes.items() if v[2] or "Traceback" in v[1]}
    assert not tracebacks, tracebacks
    outbox.send_queued()
    for rec in smtp.received:
        assert b"\nBcc:" not in rec.data and b"evil" not in b"".join(rec.rcpt_tos.__str__().encode() for _ in [0])


def test_cli_send_after_extremes(run, make_account, smtp: SmtpServer) -> None:
    make_account()
    args = ("send", "--account", "Work", "--to", "a@example.test", "--subject", "S", "--body", "x", "--queue")
    outcomes = {}
    for value in (
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
        "1970-01-01T00:00Z",
        "2026-01-01T00:00+23:59",
        "2026-12-24T09:00[Europe/Berlin]",
        "9999-12-31T23:59:59.999999+00:00",
    ):
        r = run(*args, "--send-after", value)
        outcomes[value] = (
            r.exit_code,
            (r.stdout + r.stderr)[-200:],
            repr(r.exception)[:150] if r.exception and not isinstance(r.exception, SystemExit) else "",
        )
    for k, v in outcomes.items():
        print(k, v)
    listed = run("outbox", "list", "--account", "Work", "--json")
    print(listed.exit_code, listed.stdout[:500])
    r = run("send-queued", "--json")
    print("send-queued", r.exit_code, r.stdout, r.stderr[-300:])
    assert not [k for k, v in outcomes.items() if v[2]], outcomes
    assert listed.exit_code == 0 and r.exit_code == 0
