"""Sending a message now over the account's SMTP server, and keeping it in the account's Sent view."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from webapp.adapters import mime
from webapp.adapters.errors import AdapterError, ErrorKind
from webapp.adapters.mail import smtp
from webapp.adapters.mime import HeaderError, OutgoingMessage, VerificationError, addresses
from webapp.adapters.mime import OutgoingAttachment as OutgoingAttachment
from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage
from webapp.models.base import utcnow
from webapp.models.message import SENT_FOLDER, MessageStatus
from webapp.services.account import accounts, errorlog
from webapp.services.errors import ConnectionFailed, Invalid, PartlySent
from webapp.services.outgoing import sentcopy
from webapp.services.platform import blobs
from webapp.services.platform.failpoints import NONE as NO_FAILPOINTS
from webapp.services.platform.failpoints import FailPoints
from webapp.services.receiving import store

log = logging.getLogger(__name__)

STORE_RETRIES = 4


@dataclass(frozen=True)
class Draft:
    """What the user wrote. Address fields hold several addresses separated by ``;`` or ``,``, each
    ``address`` or ``Name <address>`` (``"Doe, John" <j@example.com>`` keeps its comma)."""

    to: str
    subject: str
    text: str = ""
    html: str = ""
    cc: str = ""
    bcc: str = ""
    attachments: tuple[OutgoingAttachment, ...] = field(default=(), repr=False)
    reply_to: str = ""
    in_reply_to: str = ""
    references: str = ""


def compose(account: EmailAccount, draft: Draft) -> OutgoingMessage:
    """Validate ``draft`` into a message from ``account``; Invalid names the bad field or address."""
    try:
        to = mime.parse_addresses("To", draft.to)
        cc = mime.parse_addresses("CC", draft.cc)
        bcc = mime.parse_addresses("BCC", draft.bcc)
        reply_to = mime.parse_addresses("Reply-To", draft.reply_to)
        mime.check_header_value("Subject", draft.subject)
        for attachment in draft.attachments:
            mime.check_header_value(f"attachment filename {attachment.filename[:80]!r}", attachment.filename)
        mime.check_header_value("From display name (the account's)", account.display_name)
        addresses.check_address(account.address)
    except HeaderError as exc:
        raise Invalid(str(exc)) from None
    except addresses.AddressError as exc:
        raise Invalid(f"From: the account's address {account.address!r} cannot be used ({exc})") from None
    if not to:
        raise Invalid("To: at least one recipient is required")
    if not draft.subject.strip():
        raise Invalid("Subject: required")
    if not draft.text.strip() and not draft.html.strip():
        raise Invalid("Body: a text or HTML body is required")
    for label, body in (("Body", draft.text), ("HTML", draft.html)):
        try:
            body.encode("utf-8")
        except UnicodeEncodeError:
            raise Invalid(f"{label}: holds bytes that are not valid UTF-8") from None
    return OutgoingMessage(
        sender=account.address,
        sender_name=account.display_name,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        in_reply_to=draft.in_reply_to,
        references=draft.references,
        subject=draft.subject,
        text=draft.text,
        html=draft.html,
        attachments=draft.attachments,
    )


def build(
    account: EmailAccount, draft: Draft, *, failpoints: FailPoints = NO_FAILPOINTS
) -> tuple[OutgoingMessage, bytes]:
    """Validate and build ``draft``: the message and its bytes. Invalid says why (the Error logs too, when
    the built bytes said something other than intended, or building failed unexpectedly)."""
    accounts.require_sending(account)
    message = compose(account, draft)
    detail = f"subject={draft.subject[:200]}"
    try:
        failpoints.hit("send_build")
        return message, mime.build(message)
    except VerificationError as exc:
        # Every check passed, yet the bytes said something else: worth an entry in the Error logs.
        errorlog.record(account, "send", str(exc), detail=f"kind=verification; {detail}")
        raise Invalid(str(exc)) from None
    except HeaderError as exc:
        raise Invalid(str(exc)) from None
    except Exception as exc:  # never a 500: the reason goes to the Error logs
        log.exception("account %s: building a message failed", account.name)
        reason = f"the message could not be built: unexpected error ({type(exc).__name__})"
        errorlog.record(account, "send", reason, detail=f"kind=unexpected; {detail}")
        raise Invalid(reason) from None


def send(account: EmailAccount, draft: Draft, *, failpoints: FailPoints = NO_FAILPOINTS) -> EmailMessage | None:
    """Send ``draft`` now and store it in the Sent view; failures go to the Error logs and raise.

    Once the server has taken the message, a failing database is retried; if it keeps failing, the Error
    logs (or the log) say the message went out unrecorded and None is returned: it was sent, never raise.
    """
    message, raw = build(account, draft, failpoints=failpoints)
    detail = f"subject={draft.subject[:200]}"
    try:
        credentials = accounts.outgoing_auth(account)
        failpoints.hit("send_smtp")
        endpoint = accounts.outgoing_endpoint(account)
        report = smtp.send(endpoint, credentials, message.sender, message.recipients, raw)
    except AdapterError as exc:
        reason = f"Outgoing server: {exc}"
        errorlog.record(account, "send", reason, detail=f"{errorlog.detail_of(exc)}; {detail}")
        raise ConnectionFailed(reason, exc.kind) from None
    except Exception as exc:  # never a 500: the reason goes to the Error logs
        log.exception("account %s: sending failed", account.name)
        reason = f"Outgoing server: unexpected error ({type(exc).__name__})"
        errorlog.record(account, "send", reason, detail=f"kind=unexpected; {detail}")
        raise ConnectionFailed(reason, "unexpected") from None
    if report.refused:
        # The server took it for the other recipients: keep it in Sent, so nobody sends it twice.
        reason = f"Outgoing server: {endpoint.describe()} refused some recipients: {report.describe_refusals()}"
        _store_sent(account, raw, message, failpoints, last_error=reason)
        errorlog.record(account, "send", reason, detail=f"kind={ErrorKind.RECIPIENTS}; {detail}")
        raise PartlySent(reason, ErrorKind.RECIPIENTS)
    sent = _store_sent(account, raw, message, failpoints)
    sentcopy.copy_to_sent_folder(account, [blobs.sha256(raw)])
    return sent


def _store_sent(
    account: EmailAccount, raw: bytes, message: OutgoingMessage, failpoints: FailPoints, last_error: str | None = None
) -> EmailMessage | None:
    """Keep a sent message in Sent, retrying a failing database: the mail went out either way."""
    for attempt in range(STORE_RETRIES):
        try:
            failpoints.hit("send_store")
            return _store(account, raw, message, last_error)
        except Exception as exc:
            db.session.rollback()
            if attempt < STORE_RETRIES - 1:
                time.sleep(0.1 * 2**attempt)
                continue
            log.exception("account %s: a sent message could not be stored", account.name)
            reason = f"the message was sent, but keeping it in Sent failed ({type(exc).__name__})"
            try:
                errorlog.record(account, "send", reason, detail=f"subject={message.subject[:200]}")
            except Exception:  # noqa: BLE001 - the database itself may be what fails; the log line above remains
                db.session.rollback()
    return None


@writes
def _store(account: EmailAccount, raw: bytes, message: OutgoingMessage, last_error: str | None = None) -> EmailMessage:
    bcc = tuple(m.address if isinstance(m, addresses.Mailbox) else m for m in message.bcc)
    stored = store.add(account, store.Origin(SENT_FOLDER), raw, status=MessageStatus.SENT, seen=True, bcc=bcc)
    stored.sent_at = utcnow()
    stored.attempts = 1
    stored.last_error = last_error
    db.session.commit()
    return stored
