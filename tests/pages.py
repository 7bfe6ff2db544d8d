"""Every GET page of the app, with real objects behind its ids: for the checks that visit them all (unique
ids, no horizontal scrolling on a phone, no CSP violation) and for the screenshots (tests/screenshots.py).

A new route with an argument this module does not know fails those checks with a message saying so: add a
value for it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP
from typing import Any

from flask import Flask
from sqlalchemy import update

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from webapp.database import write_transaction
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage, FetchRun, User
from webapp.services.account import errorlog
from webapp.services.events import dispatch, webhooks
from webapp.services.identity import users
from webapp.services.outgoing import drafts, outbox
from webapp.services.outgoing.sending import Draft, OutgoingAttachment
from webapp.services.reading import messages
from webapp.services.receiving import fetching, fetchjobs

LONG = 5000  # characters of the long subject and sender, without a space
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "000154a24f5d0000000049454e44ae426082"
)


def long_message(length: int = LONG) -> bytes:
    """A message whose subject and sender name are ``length`` characters without a space (as received)."""
    return (
        b"From: " + b"S" * length + b" <sender@example.test>\r\n"
        b"To: alice@example.test\r\n"
        b"Subject: " + b"L" * length + b"\r\n"
        b"Date: Wed, 07 Jan 2026 09:30:00 +0000\r\n"
        b"Message-ID: <long@example.test>\r\n"
        b"\r\n" + b"W" * length + b"\r\n"
    )


def rich_message() -> bytes:
    """HTML with an inline image and a remote one, a plain-text alternative and two attachments."""
    msg = MimeMessage(policy=SMTP)
    msg["From"] = "Mallory Example <mallory@example.test>"
    msg["To"] = "alice@example.test, Bob Example <bob@example.test>"
    msg["Cc"] = "carol@example.test"
    msg["Subject"] = "Quarterly report with pictures"
    msg["Date"] = "Thu, 08 Jan 2026 10:00:00 +0000"
    msg.set_content("The report is attached. Visit https://example.com/report for more.")
    msg.add_alternative(
        '<h2>Report</h2><p>The figures: <img src="cid:logo@x" alt="logo"> '
        '<img src="https://tracker.example/pixel.gif" alt="pixel"></p><p>' + "wide" * 400 + "</p>",
        subtype="html",
    )
    msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo@x>")
    msg.add_attachment(b"%PDF-1.4 report", maintype="application", subtype="pdf", filename="report-2026.pdf")
    msg.add_attachment(b"a,b\r\n1,2\r\n", maintype="text", subtype="csv", filename="F" * 300 + ".csv")
    return msg.as_bytes()


def undated_message() -> bytes:
    return (
        b"From: Nodate <nodate@example.test>\r\nTo: alice@example.test\r\nSubject: A message without a date\r\n"
        b"Message-ID: <nodate@example.test>\r\n\r\nNo Date header here.\r\n"
    )


@dataclass
class Objects:
    admin: User
    user: User
    account: EmailAccount
    rich: EmailMessage
    long: EmailMessage
    undated: EmailMessage
    attachment_id: int
    inline_id: int
    job_id: str
    webhook_id: int
    draft_id: int = 0


def _outbox(account: EmailAccount) -> int:
    """Outgoing mail in every state, with long subjects, recipients and errors; the draft's id."""
    many = "; ".join(f"recipient{n}@example.test" for n in range(12))
    queued = outbox.enqueue(account, Draft(to=many, subject="Q" * 300, text="queued"), nudge_worker=False)
    failed = outbox.enqueue(account, Draft(to="r@example.test", subject="Failed one", text="x"), nudge_worker=False)
    sent = outbox.enqueue(account, Draft(to="s@example.test", subject="Sent one", text="x"), nudge_worker=False)
    later = outbox.enqueue(account, Draft(to="t@example.test", subject="Later", text="x"), nudge_worker=False)
    with write_transaction():
        db.session.execute(
            update(EmailMessage)
            .where(EmailMessage.id == failed.id)
            .values(status="FAILED", attempts=3, possibly_sent=True, last_error="Outgoing server: " + "e" * 400,
                    accepted=["a@example.test"])
        )  # fmt: skip
        db.session.execute(update(EmailMessage).where(EmailMessage.id == sent.id).values(status="SENT", folder="Sent"))
        db.session.execute(
            update(EmailMessage).where(EmailMessage.id == later.id).values(attempts=1, last_error="451 later")
        )
    assert queued.id
    draft = drafts.save(
        account,
        Draft(
            to="half typed; bob@", subject="D" * 200, text="draft", attachments=(OutgoingAttachment("a.pdf", b"%PDF"),)
        ),
    )
    return draft.id


def make_objects(make_user: Any, make_account: Any, dovecot: Dovecot, password: str) -> Objects:
    """An admin and a user, an account with messages (a long one, an HTML one with attachments, one without
    a date, and some of every kind), a webhook, an error log entry and a queued fetch job."""
    admin = make_user("boss", password, role="admin")
    user = make_user("carol", password)
    dovecot.deliver_many("alice", generated.mix(12))
    for raw in (long_message(), rich_message(), undated_message()):
        dovecot.deliver("alice", raw)
    account = make_account(fetch_strategy="replicate")
    assert fetching.fetch(account).stored == 15
    users.grant(user, account, read=True, send=True)
    stored = messages.listing(account, limit=0)
    rich = next(m for m in stored if m.subject == "Quarterly report with pictures")
    rich = messages.ensure_parsed(rich)
    long = next(m for m in stored if (m.subject or "").startswith("LLLL"))
    undated = next(m for m in stored if m.subject == "A message without a date")
    attachment = next(a for a in rich.attachments if a.filename == "report-2026.pdf")
    inline = next(a for a in rich.attachments if a.content_id == "logo@x")
    hook, _secret = webhooks.add_webhook(account, "https://hooks.example.test/mail")
    errorlog.record(account, "fetch", "Incoming server: " + "x" * 300, detail="kind=test; " + "y" * 300)
    # Tables that grow with use: a webhook's delivery log (a failed test event), the fetch history with a
    # long error — the pages must hold their shape with them too.
    dead, _secret = webhooks.add_webhook(account, "http://127.0.0.1:9/" + "long-path/" * 20)
    dispatch.send_test(dead)
    with write_transaction():
        db.session.add(
            FetchRun(account_id=account.id, trigger="schedule", status="failed", error="Incoming server: " + "z" * 400)
        )
    job_id = fetchjobs.enqueue(account)  # no worker: it stays queued, its page polls
    draft_id = _outbox(account)
    return Objects(admin, user, account, rich, long, undated, attachment.id, inline.id, job_id, hook.id, draft_id)


# Endpoints that are not pages (files, JSON) are visited too; the checks skip what is not HTML.
SKIP = {"static"}
# Pages that need no login.
PUBLIC = {"auth.login", "auth.first_run", "main.healthz"}


def endpoint_urls(app: Flask, objects: Objects) -> dict[str, str]:
    """Endpoint → URL for every GET route but static files, its ids filled with the objects."""
    common: dict[str, object] = {
        "account_id": objects.account.id,
        "message_id": objects.rich.id,
        "user_id": objects.user.id,
        "job_id": objects.job_id,
        "webhook_id": objects.webhook_id,
        "topic": "webhooks",
    }
    per_endpoint: dict[str, dict[str, object]] = {
        "messages.attachment": {"attachment_id": objects.attachment_id},
        "messages.inline_image": {"attachment_id": objects.inline_id},
        "outbox.tab": {"status": "queued"},
    }
    urls: dict[str, str] = {}
    with app.test_request_context():
        from flask import url_for

        for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
            if "GET" not in (rule.methods or set()) or rule.endpoint in SKIP:
                continue
            values = {**common, **per_endpoint.get(rule.endpoint, {})}
            missing = [name for name in rule.arguments if name not in values]
            assert not missing, f"tests/pages.py has no value for {missing} of {rule.rule}: add one"
            urls[rule.endpoint] = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
    return urls


def page_urls(app: Flask, objects: Objects) -> list[str]:
    """One URL for every GET route (ids filled with the objects), plus variants worth a look of their own."""
    urls = list(endpoint_urls(app, objects).values())
    with app.test_request_context():
        from flask import url_for

        account = objects.account.id
        urls += [
            url_for("mailbox.mailbox", account_id=account, q="Text message"),
            url_for("mailbox.mailbox", account_id=account, q="nothing matches this", unread="1"),
            url_for("mailbox.mailbox", account_id=account, folder="Sent"),
            url_for("mailbox.mailbox", account_id=account, job=objects.job_id),
            url_for("messages.show", message_id=objects.long.id),
            url_for("messages.show", message_id=objects.undated.id, q="message"),
            url_for("messages.show", message_id=objects.rich.id, view="text"),
            url_for("messages.show", message_id=objects.rich.id, view="html", images="1"),
            url_for("outbox.tab", account_id=account, status="drafts"),
            url_for("outbox.tab", account_id=account, status="sent"),
            url_for("outbox.tab", account_id=account, status="failed"),
            url_for("mailbox.compose", account_id=account, draft=objects.draft_id),
        ]
    return urls
