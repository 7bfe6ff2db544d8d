"""The outbox pages: drafts kept with their attachments, queue with a time, the tabs and their actions,
Reply / Reply all / Forward, and who may do what."""

from __future__ import annotations

import email
import html
import io
import re
from datetime import UTC, datetime, timedelta
from email.policy import default

from flask.testing import FlaskClient

from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailMessage
from webapp.models.message import MessageStatus
from webapp.services.identity import users
from webapp.services.outgoing import outbox
from webapp.services.outgoing.sending import Draft
from webapp.services.receiving import fetching


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _rows(status: str) -> list[EmailMessage]:
    db.session.rollback()
    return list(db.session.query(EmailMessage).filter_by(status=status).order_by(EmailMessage.id))


def test_a_draft_keeps_its_attachment_until_it_is_sent(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer
) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    page = f"/accounts/{account.id}/compose"
    saved = post_form(
        page,
        {"to": "half typed", "subject": "Plan", "text": "Draft text", "action": "save",
         "attachments": [(io.BytesIO(b"%PDF-1.4 plan"), "plan.pdf")]},
        content_type="multipart/form-data",
    )  # fmt: skip
    assert saved.status_code == 302 and "draft=" in saved.headers["Location"]
    (draft,) = _rows(MessageStatus.DRAFT)
    drafts_tab = _text(client.get(f"/accounts/{account.id}/outbox/drafts"))
    assert "Plan" in drafts_tab and f"draft={draft.id}" in drafts_tab
    reopened = _text(client.get(saved.headers["Location"]))
    assert 'value="half typed"' in reopened and "Draft text" in reopened and "plan.pdf" in reopened
    attachment_id = draft.attachments[0].id
    # Sending the half-typed draft fails: the draft stays, attachment included.
    failed = post_form(
        saved.headers["Location"],
        {"to": "half typed", "subject": "Plan", "text": "Draft text", "action": "send", "draft_id": str(draft.id),
         "keep_attachment": str(attachment_id)},
        url=page,
    )  # fmt: skip
    assert failed.status_code == 200 and "kept as a draft" in _text(failed) and "plan.pdf" in _text(failed)
    assert len(_rows(MessageStatus.DRAFT)) == 1 and smtp.received == []
    sent = post_form(
        saved.headers["Location"],
        {"to": "bob@example.test", "subject": "Plan", "text": "Draft text", "action": "send", "draft_id": str(draft.id),
         "keep_attachment": str(attachment_id)},
        url=page,
    )  # fmt: skip
    assert sent.status_code == 302, _text(sent)[:500]
    (received,) = smtp.received
    assert b'filename="plan.pdf"' in received.data
    assert _rows(MessageStatus.DRAFT) == [] and len(_rows(MessageStatus.SENT)) == 1


def test_queue_from_compose_with_a_time_then_cancel_retry_and_send_now(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer
) -> None:
    account = make_account()
    make_user("boss", role="admin")
    login("boss")
    later = (datetime.now(UTC) + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M")
    queued = post_form(
        f"/accounts/{account.id}/compose",
        {"to": "bob@example.test", "subject": "Later", "text": "x", "action": "queue", "send_after": later},
    )
    assert queued.status_code == 302 and queued.headers["Location"].endswith(f"/accounts/{account.id}/outbox/queued")
    (row,) = _rows(MessageStatus.QUEUED)
    assert row.send_after is not None and row.send_after > datetime.now(UTC) + timedelta(hours=2)
    tab = _text(client.get(queued.headers["Location"]))
    assert "Later" in tab and "not before" in tab
    bad_time = post_form(
        f"/accounts/{account.id}/compose",
        {"to": "bob@example.test", "subject": "Bad", "text": "x", "action": "queue", "send_after": "soon"},
    )
    assert "is not a date and time" in _text(bad_time)
    outbox_page = f"/accounts/{account.id}/outbox/queued"
    cancelled = post_form(outbox_page, {}, url=f"/accounts/{account.id}/outbox/{row.id}/cancel")
    assert cancelled.status_code == 302 and _rows(MessageStatus.QUEUED) == []
    smtp.fail_with = "550 5.7.1 no"
    failing = outbox.enqueue(account, Draft(to="c@example.test", subject="Failing", text="x"))
    outbox.send_queued()
    failed_tab = _text(client.get(f"/accounts/{account.id}/outbox/failed"))
    assert "Failing" in failed_tab and "550 5.7.1 no" in failed_tab and "Retry all failed" in failed_tab
    overview = _text(client.get("/"))
    assert "1 failed" in overview
    smtp.fail_with = None
    post_form(outbox_page, {}, url=f"/accounts/{account.id}/outbox/{failing.id}/retry")
    assert [m.id for m in _rows(MessageStatus.QUEUED)] == [failing.id]
    assert "1 queued" in _text(client.get("/"))
    now = post_form(outbox_page, {}, url=f"/accounts/{account.id}/outbox/send-now")
    assert now.status_code == 302
    outbox.send_queued()  # what the nudged worker does
    assert "Failing" in _text(client.get(f"/accounts/{account.id}/outbox/sent"))


def _delivered(dovecot: Dovecot, account) -> EmailMessage:
    dovecot.deliver(
        "alice",
        b"From: Mallory <mallory@example.test>\r\nTo: alice@example.test, Bob <bob@example.test>\r\n"
        b"Cc: carol@example.test\r\nReply-To: replies@example.test\r\nSubject: Re: Budget\r\n"
        b"Message-ID: <two@example.test>\r\nReferences: <one@example.test>\r\n"
        b"Date: Wed, 07 Jan 2026 09:30:00 +0000\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'
        b"First line\r\nSecond line\r\n--b\r\nContent-Type: application/pdf\r\n"
        b'Content-Disposition: attachment; filename="budget.pdf"\r\n\r\n%PDF-1.4\r\n--b--\r\n',
    )
    fetching.fetch(account)
    (message,) = _rows(MessageStatus.RECEIVED)
    return message


def test_reply_reply_all_and_forward_make_drafts_that_send(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer, dovecot: Dovecot
) -> None:
    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    login("writer")
    original = _delivered(dovecot, account)
    page = f"/messages/{original.id}"
    assert "Reply all" in _text(client.get(page))

    def answer(how: str) -> str:
        made = post_form(page, {"how": how}, url=f"/messages/{original.id}/answer")
        assert made.status_code == 302 and "draft=" in made.headers["Location"]
        return _text(client.get(made.headers["Location"]))

    reply = answer("reply")
    assert 'value="replies@example.test"' in reply and 'value="Re: Budget"' in reply
    assert "&gt; First line" in reply or "> First line" in reply
    everyone = answer("reply-all")
    to_all = re.search(r'name="cc"[^>]*value="([^"]*)"', everyone)
    assert to_all and "carol@example.test" in to_all.group(1) and "alice@example.test" not in to_all.group(1)
    forward = answer("forward")
    assert 'value="Fwd: Budget"' in forward and "budget.pdf" in forward and "Forwarded message" in forward
    as_eml = answer("forward-eml")
    assert ".eml" in as_eml

    (reply_draft, _all, forward_draft, _eml) = _rows(MessageStatus.DRAFT)
    fields = dict(reply_draft.draft_fields or {})
    sent = post_form(
        page,
        {**fields, "action": "send", "draft_id": str(reply_draft.id)},
        url=f"/accounts/{account.id}/compose",
    )
    assert sent.status_code == 302, _text(sent)[:400]
    parsed = email.message_from_bytes(smtp.received[-1].data, policy=default)
    assert parsed["In-Reply-To"] == "<two@example.test>"
    assert parsed["References"] == "<one@example.test> <two@example.test>"
    forward_fields = {**(forward_draft.draft_fields or {}), "to": "dave@example.test"}
    keep = [str(a.id) for a in forward_draft.attachments]
    sent = post_form(
        page,
        {**forward_fields, "action": "send", "draft_id": str(forward_draft.id), "keep_attachment": keep},
        url=f"/accounts/{account.id}/compose",
    )
    assert sent.status_code == 302 and b'filename="budget.pdf"' in smtp.received[-1].data


def test_who_may_see_and_act_on_an_outbox(
    client: FlaskClient, make_user, make_account, login, post_form, smtp: SmtpServer, dovecot: Dovecot
) -> None:
    account = make_account()
    other = make_account(name="Other", address="other@example.test")
    original = _delivered(dovecot, account)
    queued = outbox.enqueue(account, Draft(to="x@example.test", subject="Q", text="x"))
    users.grant(make_user("reader"), account, read=True, send=False)
    users.grant(make_user("sender"), other, read=True, send=True)
    login("reader")
    assert client.get(f"/accounts/{account.id}/outbox/queued").status_code == 403
    assert "Reply all" not in _text(client.get(f"/messages/{original.id}"))
    refused = post_form(f"/messages/{original.id}", {"how": "reply"}, url=f"/messages/{original.id}/answer")
    assert refused.status_code == 403
    post_form("/", {}, url="/logout")
    login("sender")
    assert client.get(f"/accounts/{account.id}/outbox/queued").status_code == 403
    own = f"/accounts/{other.id}/outbox/queued"
    assert client.get(own).status_code == 200 and client.get(f"/accounts/{other.id}/outbox/bogus").status_code == 404
    # Another account's message through one's own account: not there.
    assert post_form(own, {}, url=f"/accounts/{other.id}/outbox/{queued.id}/cancel").status_code == 404
    assert post_form(own, {}, url=f"/accounts/{other.id}/drafts/{queued.id}/delete").status_code == 404
    assert client.get(f"/accounts/{other.id}/compose?draft={queued.id}").status_code == 404
    assert _rows(MessageStatus.QUEUED)[0].id == queued.id


def test_a_draft_sent_from_four_tabs_at_once_goes_out_once(
    make_user, make_account, smtp: SmtpServer, web_server: str
) -> None:
    import threading

    from tests.webclient import WebClient
    from webapp.services.outgoing import drafts

    account = make_account()
    users.grant(make_user("writer"), account, read=True, send=True)
    draft = drafts.save(account, Draft(to="bob@example.test", subject="Once", text="x"))
    page = f"/accounts/{account.id}/compose"
    clients = []
    for _ in range(4):
        client = WebClient(web_server)
        client.login("writer")
        clients.append((client, client.get(f"{page}?draft={draft.id}")[1]))
    start = threading.Barrier(4)
    answers: list[tuple[int, str]] = []

    def click(client: WebClient, form: str) -> None:
        fields = {"to": "bob@example.test", "subject": "Once", "text": "x", "action": "send", "draft_id": str(draft.id)}
        start.wait(timeout=30)
        answers.append(client.post(page, fields, page=form))

    threads = [threading.Thread(target=click, args=pair) for pair in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(smtp.received) == 1, answers
    assert all(code < 500 for code, _ in answers) and sum("Sent: Once" in text for _, text in answers) == 1
    assert _rows(MessageStatus.DRAFT) == [] and len(_rows(MessageStatus.SENT)) == 1
