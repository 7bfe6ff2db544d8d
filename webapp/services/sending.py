"""Sending a message now over the account's SMTP server, and keeping it in the account's Sent view."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from webapp.adapters import mime, smtp
from webapp.adapters.errors import AdapterError
from webapp.adapters.mime import HeaderError, OutgoingMessage
from webapp.adapters.mime import OutgoingAttachment as OutgoingAttachment
from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage
from webapp.models.base import utcnow
from webapp.models.message import SENT, SENT_FOLDER
from webapp.services import accounts, errorlog, messages
from webapp.services.errors import ConnectionFailed, Invalid

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Draft:
    """What the user wrote. Address fields hold several addresses separated by ``;``."""

    to: str
    subject: str
    text: str = ""
    html: str = ""
    cc: str = ""
    bcc: str = ""
    attachments: tuple[OutgoingAttachment, ...] = field(default=(), repr=False)


def compose(account: EmailAccount, draft: Draft) -> OutgoingMessage:
    """Validate ``draft`` into a message from ``account``; Invalid names the bad field or address."""
    try:
        to = mime.parse_addresses("To", draft.to)
        cc = mime.parse_addresses("CC", draft.cc)
        bcc = mime.parse_addresses("BCC", draft.bcc)
        mime.check_header_value("Subject", draft.subject)
        for attachment in draft.attachments:
            mime.check_header_value("attachment filename", attachment.filename)
    except HeaderError as exc:
        raise Invalid(str(exc)) from None
    if not to:
        raise Invalid("To: at least one recipient is required")
    if not draft.subject.strip():
        raise Invalid("Subject: required")
    if not draft.text.strip() and not draft.html.strip():
        raise Invalid("Body: a text or HTML body is required")
    return OutgoingMessage(
        sender=account.address,
        sender_name=account.display_name,
        to=to,
        cc=cc,
        bcc=bcc,
        subject=draft.subject,
        text=draft.text,
        html=draft.html,
        attachments=draft.attachments,
    )


def send(account: EmailAccount, draft: Draft) -> EmailMessage:
    """Send ``draft`` now and store it in the Sent view; failures go to the Error logs and raise."""
    message = compose(account, draft)
    try:
        raw = mime.build(message)
    except HeaderError as exc:
        raise Invalid(str(exc)) from None
    try:
        credentials = accounts.credentials(account) if account.smtp_auth == "login" else None
        smtp.send(accounts.outgoing_endpoint(account), credentials, message.sender, message.recipients, raw)
    except AdapterError as exc:
        reason = f"Outgoing server: {exc}"
        partly = exc.kind == "recipients" and "refused some recipients" in str(exc)
        if partly:
            # The server took it for the other recipients: keep it in Sent, so nobody sends it twice.
            _store(account, raw, message, last_error=reason)
        errorlog.record(account, "send", reason, detail=f"kind={exc.kind}; subject={draft.subject[:200]}")
        raise ConnectionFailed(reason, exc.kind) from None
    return _store(account, raw, message)


@writes
def _store(account: EmailAccount, raw: bytes, message: OutgoingMessage, last_error: str | None = None) -> EmailMessage:
    stored = messages.add(account, messages.Origin(SENT_FOLDER), raw, status=SENT, seen=True, bcc=message.bcc)
    stored.sent_at = utcnow()
    stored.attempts = 1
    stored.last_error = last_error
    db.session.commit()
    return stored
