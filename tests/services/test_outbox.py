"""The outbox against the test kit's SMTP server: queue, claim, retry, fail, sweep, never send twice."""

from __future__ import annotations

import email
from collections import Counter
from datetime import timedelta
from email.policy import default

import pytest
from sqlalchemy import select, update

from tests.servers.smtp import SmtpServer
from webapp import connector
from webapp.database import write_transaction
from webapp.extensions import db
from webapp.models import EmailMessage
from webapp.models.base import utcnow
from webapp.models.message import SENT_FOLDER, MessageStatus
from webapp.services.account import errorlog
from webapp.services.errors import Invalid, NotFound
from webapp.services.outgoing import delivery, outbox
from webapp.services.outgoing.sending import Draft
from webapp.services.platform import failpoints


def _draft(number: int = 0, **over: str) -> Draft:
    values = {"to": f"r{number}@example.test", "subject": f"Queued {number}", "text": f"Body {number}\n"}
    values.update(over)
    return Draft(**values)  # type: ignore[arg-type]


def _message_ids(smtp: SmtpServer) -> Counter[str]:
    with smtp.lock:
        return Counter(
            str(email.message_from_bytes(r.data, policy=default)["Message-ID"]).strip("<>") for r in smtp.received
        )


def _reload(message: EmailMessage) -> EmailMessage:
    db.session.rollback()
    fresh = db.session.get(EmailMessage, message.id)
    assert fresh is not None
    return fresh


def _later(minutes: int) -> object:
    return utcnow() + timedelta(minutes=minutes)


def test_a_queued_message_goes_out_once_with_the_message_id_fixed_at_enqueue(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    queued = outbox.enqueue(account, _draft(1, cc="Carol <c@example.test>", bcc="b@example.test"))
    assert queued.status == MessageStatus.QUEUED and queued.message_id
    assert queued.envelope == ["r1@example.test", "c@example.test", "b@example.test"]
    done = outbox.send_queued()
    assert done.result is not None and (done.result.sent, done.result.failed) == (1, 0)
    sent = _reload(queued)
    assert (sent.status, sent.folder, sent.attempts) == (MessageStatus.SENT, SENT_FOLDER, 1)
    assert sent.accepted == ["r1@example.test", "c@example.test", "b@example.test"] and sent.sent_at
    assert _message_ids(smtp) == Counter({queued.message_id: 1})
    (received,) = smtp.received
    assert received.rcpt_tos == ["r1@example.test", "c@example.test", "b@example.test"]
    assert b"b@example.test" not in received.data  # BCC never in the headers
    # A second pass finds nothing to do.
    again = outbox.send_queued()
    assert again.result is not None and again.result.sent == 0 and len(smtp.received) == 1


def test_one_connection_is_reused_for_a_run_of_messages(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    for number in range(30):
        outbox.enqueue(account, _draft(number))
    result = delivery.drain(account)
    assert result.sent == 30
    assert len({r.authenticated_as for r in smtp.received}) == 1 and len(smtp.received) == 30
    assert outbox.listing(account, "queued") == [] and len(outbox.listing(account, "sent")) == 30


def test_451_forever_uses_exactly_max_attempts_then_fails_with_the_reason(make_account, smtp: SmtpServer) -> None:
    account = make_account(max_send_attempts=3)
    queued = outbox.enqueue(account, _draft())
    smtp.fail_with = "451 4.3.0 Try again later"
    now = utcnow()
    for step in range(10):  # bounded: far more passes than attempts
        outbox.send_queued(now=now + timedelta(hours=step))
        if _reload(queued).status == MessageStatus.FAILED:
            break
    failed = _reload(queued)
    assert failed.status == MessageStatus.FAILED and failed.attempts == 3
    assert smtp.transactions == 3
    assert "451" in (failed.last_error or "") and "after 3 attempts" in (failed.last_error or "")
    assert any("451" in e.message for e in errorlog.entries(account))


def test_a_retry_waits_for_its_backoff(make_account, smtp: SmtpServer) -> None:
    account = make_account(max_send_attempts=5)
    queued = outbox.enqueue(account, _draft())
    smtp.fail_with = "421 4.7.0 Busy"
    outbox.send_queued()
    waiting = _reload(queued)
    assert waiting.status == MessageStatus.QUEUED and waiting.attempts == 1 and waiting.next_attempt_at
    assert timedelta(seconds=29) <= waiting.next_attempt_at - utcnow() <= timedelta(seconds=91)
    outbox.send_queued()  # not due yet: nothing happens
    assert _reload(queued).attempts == 1 and smtp.transactions == 1
    smtp.fail_with = None
    outbox.send_queued(now=waiting.next_attempt_at + timedelta(seconds=1))
    assert _reload(queued).status == MessageStatus.SENT and len(smtp.received) == 1


def test_550_fails_after_one_attempt(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    queued = outbox.enqueue(account, _draft())
    smtp.fail_with = "550 5.7.1 Rejected as spam"
    outbox.send_queued()
    failed = _reload(queued)
    assert failed.status == MessageStatus.FAILED and failed.attempts == 1 and smtp.transactions == 1
    assert "550" in (failed.last_error or "") and not failed.possibly_sent


def test_mixed_recipients_accepted_ones_are_never_sent_again(make_account, smtp: SmtpServer) -> None:
    account = make_account(max_send_attempts=4)
    queued = outbox.enqueue(account, _draft(to="a@example.test; b@example.test; c@example.test"))
    smtp.refuse = {"b@example.test": "450 4.2.1 Mailbox busy", "c@example.test": "451 4.3.2 Later"}
    outbox.send_queued()
    first = _reload(queued)
    assert first.status == MessageStatus.QUEUED and first.accepted == ["a@example.test"]
    assert "b@example.test" in (first.last_error or "")
    smtp.refuse = {"c@example.test": "550 5.1.1 No such user"}
    outbox.send_queued(now=first.next_attempt_at + timedelta(seconds=1))  # type: ignore[operator]
    second = _reload(queued)
    # c is refused for good: FAILED, with a and b recorded as having it.
    assert second.status == MessageStatus.FAILED and second.accepted == ["a@example.test", "b@example.test"]
    assert "c@example.test" in (second.last_error or "") and "550" in (second.last_error or "")
    smtp.refuse = {}
    assert outbox.retry(account, [queued.id]) == 1
    outbox.send_queued()
    assert _reload(queued).status == MessageStatus.SENT
    assert [r.rcpt_tos for r in smtp.received] == [["a@example.test"], ["b@example.test"], ["c@example.test"]]
    assert len(set(_message_ids(smtp))) == 1  # one message, three deliveries, nobody twice


def test_every_recipient_refused_for_good_fails_at_once(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    queued = outbox.enqueue(account, _draft())
    smtp.fail_rcpt_with = "550 5.1.1 Unknown"
    outbox.send_queued()
    assert _reload(queued).status == MessageStatus.FAILED and smtp.transactions == 0


def test_an_unreachable_server_uses_attempts_and_leaves_the_message_queued(make_account, smtp: SmtpServer) -> None:
    from tests.servers.ports import refused_port

    account = make_account(outgoing_port=refused_port(), max_send_attempts=2)
    queued = outbox.enqueue(account, _draft())
    outbox.send_queued()
    waiting = _reload(queued)
    assert waiting.status == MessageStatus.QUEUED and waiting.attempts == 1
    assert "refused the connection" in (waiting.last_error or "")
    outbox.send_queued(now=_later(60))  # type: ignore[arg-type]
    assert _reload(queued).status == MessageStatus.FAILED


def test_scheduled_mail_waits_for_its_time(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    later = utcnow() + timedelta(hours=2)
    queued = outbox.enqueue(account, _draft(), send_after=later)
    outbox.send_queued()
    assert _reload(queued).status == MessageStatus.QUEUED and smtp.received == []
    outbox.send_queued(now=later + timedelta(seconds=1))
    assert _reload(queued).status == MessageStatus.SENT
    with pytest.raises(Invalid, match="zone"):
        outbox.enqueue(account, _draft(), send_after=later.replace(tzinfo=None))


def test_cancel_makes_a_draft_and_retry_only_takes_failed_mail(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    other = make_account(name="Other")
    queued = outbox.enqueue(account, _draft())
    with pytest.raises(NotFound):
        outbox.cancel(other, queued.id)  # another account's message is not there
    with pytest.raises(Invalid, match="has not failed"):
        outbox.retry(account, [queued.id])
    assert outbox.cancel(account, queued.id).status == MessageStatus.DRAFT
    outbox.send_queued()
    assert smtp.received == []
    with pytest.raises(Invalid, match="only queued or failed"):
        outbox.cancel(account, queued.id)


def test_a_claim_takes_at_most_its_limit_oldest_first(make_account) -> None:
    """Found by CI on PostgreSQL: the claim as one UPDATE … IN (SELECT … LIMIT 1 SKIP LOCKED) could take two
    messages (the planner may run the subquery again, and it skips the rows just updated)."""
    account = make_account()
    other = make_account(name="Other")
    queued = [outbox.enqueue(account, _draft(n)).id for n in range(6)]
    outbox.enqueue(other, _draft(9))
    taken = [delivery.claim(account.id, "worker", 1) for _ in range(6)]
    assert taken == [[message_id] for message_id in queued]
    assert delivery.claim(account.id, "worker", 5) == []  # nothing due is left; the other account's is not taken


def test_the_sweep_puts_back_what_never_reached_data_and_marks_the_rest(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    before = outbox.enqueue(account, _draft(1))
    inside = outbox.enqueue(account, _draft(2))
    fresh = outbox.enqueue(account, _draft(3))
    owner = "dead-worker"
    assert delivery.claim(account.id, owner, 3) == [before.id, inside.id, fresh.id]
    with write_transaction():
        db.session.execute(update(EmailMessage).where(EmailMessage.id == inside.id).values(send_stage="data"))
        db.session.execute(
            update(EmailMessage).where(EmailMessage.id != fresh.id).values(lease_until=utcnow() - timedelta(seconds=1))
        )
    assert delivery.sweep() == (1, 1)
    assert _reload(before).status == MessageStatus.QUEUED
    marked = _reload(inside)
    assert (
        marked.status == MessageStatus.FAILED
        and marked.possibly_sent
        and "may have been delivered" in (marked.last_error or "")
    )
    assert _reload(fresh).status == MessageStatus.SENDING  # its lease still holds
    outbox.send_queued()
    assert _message_ids(smtp) == Counter({before.message_id: 1})


def test_a_worker_killed_inside_data_leaves_a_possibly_sent_row_not_a_resend(
    make_account, smtp: SmtpServer, app
) -> None:
    account = make_account()
    queued = outbox.enqueue(account, _draft())
    points = failpoints.FailPoints({"send_data": (1, "raise")})  # stands for a crash between DATA and its answer
    with pytest.raises(failpoints.FailPoint):
        delivery.drain(account, failpoints=points)
    stuck = _reload(queued)
    assert stuck.status == MessageStatus.SENDING and stuck.send_stage == "data"
    delivery.sweep(now=utcnow() + timedelta(seconds=app.config["SEND_LEASE_SECONDS"] + 1))
    outbox.send_queued()
    marked = _reload(queued)
    assert marked.status == MessageStatus.FAILED and marked.possibly_sent
    assert smtp.transactions == 0  # never sent again by the sweep


def test_a_database_failure_after_the_server_took_it_is_retried_and_the_message_is_sent(
    make_account, smtp: SmtpServer
) -> None:
    account = make_account()
    queued = outbox.enqueue(account, _draft())
    # The write of the outcome (the second write: the first marks DATA) fails once, then works.
    result = delivery.drain(account, failpoints=failpoints.FailPoints({"send_record": (2, "raise")}))
    assert result.sent == 1 and _reload(queued).status == MessageStatus.SENT and len(smtp.received) == 1


def test_keys_make_a_rerun_of_a_bulk_queue_safe(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    items = [(_draft(n), f"line-{n}") for n in range(5)]
    assert outbox.enqueue_many(account, items) == (5, 0)
    assert outbox.enqueue_many(account, [*items, (_draft(9), "line-9")]) == (1, 5)
    with pytest.raises(Invalid, match="line 2: To"):
        outbox.enqueue_many(account, [(_draft(10), None), (_draft(11, to=""), None)])
    assert len(outbox.listing(account, "queued")) == 6  # the bad file queued nothing


def test_the_connector_drains_the_queue(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    outbox.enqueue(account, _draft())
    assert connector.send_queued_emails() == 1
    assert len(smtp.received) == 1


def test_counts_per_account(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    outbox.enqueue(account, _draft(1))
    failing = outbox.enqueue(account, _draft(2))
    with write_transaction():
        db.session.execute(
            update(EmailMessage).where(EmailMessage.id == failing.id).values(status=MessageStatus.FAILED)
        )
    assert outbox.counts([account.id]) == {account.id: {"queued": 1, "failed": 1, "draft": 0}}
    assert db.session.scalar(select(EmailMessage.folder).where(EmailMessage.id == failing.id)) == outbox.OUTBOX_FOLDER


def test_a_copy_goes_to_the_servers_sent_folder_when_the_account_asks(
    make_account, smtp: SmtpServer, dovecot, mail_user
) -> None:
    from imapclient import IMAPClient

    account = make_account(append_to_sent=True)
    queued = outbox.enqueue(account, _draft(1))
    outbox.send_queued()
    sending_now = connector.send_email(account, {"to": "x@example.test", "subject": "Now", "text": "x"})
    assert sending_now is True
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
        client.login(*mail_user)
        client.select_folder("Sent", readonly=True)
        fetched = client.fetch(client.search(["ALL"]), [b"BODY.PEEK[]", b"FLAGS"])
    bodies = [data[b"BODY[]"] for data in fetched.values()]
    assert len(bodies) == 2 and any(f"<{queued.message_id}>".encode() in b for b in bodies)
    assert all(b"\\Seen" in data[b"FLAGS"] for data in fetched.values())
    off = make_account(name="Off", append_to_sent=False)
    outbox.enqueue(off, _draft(2))
    outbox.send_queued()
    with IMAPClient("127.0.0.1", port=dovecot.imap_port, ssl=False) as client:
        client.login(*mail_user)
        assert client.select_folder("Sent", readonly=True)[b"EXISTS"] == 2


def test_an_accounts_connections_are_limited_across_drains(make_account, smtp: SmtpServer) -> None:
    account = make_account(send_connections=1)
    outbox.enqueue(account, _draft(1))
    with delivery.connection_slot(account) as held:
        assert held is not None
        busy = delivery.drain(account)  # as a second worker would, while the first holds the connection
        assert busy.busy and busy.sent == 0 and smtp.received == []
    assert delivery.drain(account).sent == 1
    two = make_account(name="Two", send_connections=2)
    outbox.enqueue(two, _draft(2))
    with delivery.connection_slot(two) as held:
        assert held is not None and delivery.drain(two).sent == 1  # the second connection is free


def test_the_rate_limit_spaces_messages_out(make_account, smtp: SmtpServer) -> None:
    import time

    account = make_account(send_per_minute=600)  # one message every 0.1 s
    for number in range(4):
        outbox.enqueue(account, _draft(number))
    started = time.monotonic()
    assert delivery.drain(account).sent == 4
    assert time.monotonic() - started >= 0.25  # three gaps of 0.1 s (unpaced, 4 messages take ~20 ms)


def test_the_connector_sends_and_queues_a_stored_draft(make_account, smtp: SmtpServer) -> None:
    from webapp.services.outgoing import drafts
    from webapp.services.outgoing.sending import OutgoingAttachment

    account = make_account()
    other = make_account(name="Other")
    draft = drafts.save(account, _draft(1, attachments=(OutgoingAttachment("a.txt", b"hello"),)))  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        connector.send_email(other, draft)  # a draft of another account is not there
    assert connector.send_email(account, draft) is True
    assert b'filename="a.txt"' in smtp.received[0].data
    assert [m.status for m in db.session.query(EmailMessage)] == [MessageStatus.SENT]
    second = drafts.save(account, _draft(2))
    queued = connector.queue_email(account.name, second)
    assert queued.status == MessageStatus.QUEUED and connector.send_queued_emails() == 1


def test_bulk_queued_mail_is_listed_at_once_and_its_bodies_parsed_once_sent(make_account, smtp: SmtpServer) -> None:
    from webapp.models.message import BodyState
    from webapp.services.outgoing.sending import OutgoingAttachment

    account = make_account()
    items = [(_draft(n, attachments=(OutgoingAttachment("n.txt", b"note"),)), None) for n in range(3)]  # type: ignore[arg-type]
    assert outbox.enqueue_many(account, items) == (3, 0)
    queued = outbox.listing(account, "queued")
    assert sorted(m.subject for m in queued) == ["Queued 0", "Queued 1", "Queued 2"]
    assert {m.to[0]["address"] for m in queued} == {"r0@example.test", "r1@example.test", "r2@example.test"}
    assert {m.body_state for m in queued} == {BodyState.PENDING}
    outbox.send_queued()
    sent = outbox.listing(account, "sent")
    assert {m.body_state for m in sent} == {BodyState.PARSED}
    assert all(m.text_body.startswith("Body") and [a.filename for a in m.attachments] == ["n.txt"] for m in sent)
    assert all(b'filename="n.txt"' in r.data for r in smtp.received) and len(smtp.received) == 3


def test_a_page_that_died_sending_a_draft_leaves_a_draft(make_account, smtp: SmtpServer) -> None:
    from webapp.services.outgoing import drafts

    account = make_account()
    draft = drafts.save(account, _draft(2))
    with write_transaction():
        db.session.execute(
            update(EmailMessage)
            .where(EmailMessage.id == draft.id)
            .values(status="SENDING", lease_owner=delivery.DRAFT_TAKER, lease_until=utcnow() - timedelta(seconds=1))
        )
    assert delivery.sweep() == (0, 0)  # never queued: a draft has no bytes to send
    assert _reload(draft).status == MessageStatus.DRAFT
    outbox.send_queued()
    assert smtp.received == []
