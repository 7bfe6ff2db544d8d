"""Stored messages: recording a raw message with what was parsed from it, listing and reading them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from webapp.adapters import parser
from webapp.adapters.parser import Mailbox, ParsedMessage
from webapp.extensions import db
from webapp.models import Attachment, EmailAccount, EmailMessage
from webapp.models.base import utcnow
from webapp.models.message import RECEIVED
from webapp.services import blobs
from webapp.services.errors import NotFound

DEFAULT_LIMIT = 50


@dataclass(frozen=True)
class Origin:
    """Where a message came from: an IMAP folder and UID, or a POP3 UIDL, or nowhere (sent by us)."""

    folder: str
    uidvalidity: int | None = None
    uid: int | None = None
    uidl: str | None = None


def add(
    account: EmailAccount,
    origin: Origin,
    raw: bytes,
    *,
    status: str = RECEIVED,
    seen: bool = False,
    flags: tuple[str, ...] = (),
    arrived_at: datetime | None = None,
    bcc: tuple[str, ...] = (),
) -> EmailMessage:
    """Store ``raw`` exactly, parse it, and add the row to the session (the caller commits)."""
    parsed = parser.parse(raw)
    now = utcnow()
    message = EmailMessage(
        account_id=account.id,
        folder=origin.folder,
        uidvalidity=origin.uidvalidity,
        uid=origin.uid,
        uidl=origin.uidl,
        status=status,
        raw_sha256=blobs.put(raw),
        size=len(raw),
        received_at=now,
        sort_at=parsed.date or arrived_at or now,
        seen=seen,
        flags=" ".join(flags),
    )
    _fill(message, parsed)
    if bcc:
        message.bcc = [{"name": "", "address": a} for a in bcc]
    for position, part in enumerate(parsed.parts):
        message.attachments.append(
            Attachment(
                position=position,
                filename=part.filename or "attachment",
                content_type=part.content_type[:255],
                size=len(part.content),
                sha256=blobs.put(part.content),
                content_id=part.content_id,
                inline=part.inline,
            )
        )
    message.has_attachments = any(not a.inline for a in message.attachments)
    db.session.add(message)
    return message


def _fill(message: EmailMessage, parsed: ParsedMessage) -> None:
    message.message_id = parsed.message_id
    message.subject = parsed.subject
    message.from_name = parsed.sender.name if parsed.sender else ""
    message.from_address = parsed.sender.address if parsed.sender else ""
    message.to = _mailboxes(parsed.to)
    message.cc = _mailboxes(parsed.cc)
    message.bcc = _mailboxes(parsed.bcc)
    message.reply_to = _mailboxes(parsed.reply_to)
    message.date = parsed.date
    message.text_body = parsed.text
    message.html_body = parsed.html
    message.parse_error = parsed.error
    message.defects = "; ".join(parsed.defects)


def _mailboxes(values: tuple[Mailbox, ...]) -> list[dict[str, str]]:
    return [{"name": m.name, "address": m.address} for m in values]


def get(message_id: int) -> EmailMessage:
    message = db.session.get(EmailMessage, message_id)
    if message is None:
        raise NotFound(f"no message with id {message_id}")
    return message


def listing(account: EmailAccount, folder: str | None = None, limit: int = DEFAULT_LIMIT) -> list[EmailMessage]:
    """The account's messages, newest first; ``limit=0`` for all."""
    query = select(EmailMessage).where(EmailMessage.account_id == account.id)
    if folder:
        query = query.where(EmailMessage.folder == folder)
    query = query.order_by(EmailMessage.sort_at.desc(), EmailMessage.id.desc())
    if limit:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def folders(account: EmailAccount) -> list[tuple[str, int]]:
    """The folders that hold stored messages, with their counts (the account's own folder first)."""
    rows = db.session.execute(
        select(EmailMessage.folder, func.count())
        .where(EmailMessage.account_id == account.id)
        .group_by(EmailMessage.folder)
    ).all()
    counts = {str(folder): int(count) for folder, count in rows}
    counts.setdefault(account.folder if account.incoming_protocol == "imap" else "INBOX", 0)
    first = account.folder if account.incoming_protocol == "imap" else "INBOX"
    return sorted(counts.items(), key=lambda item: (item[0] != first, item[0].casefold()))


def raw_bytes(message: EmailMessage) -> bytes:
    return blobs.get(message.raw_sha256)


def attachment(message: EmailMessage, attachment_id: int) -> Attachment:
    for item in message.attachments:
        if item.id == attachment_id:
            return item
    raise NotFound(f"no attachment {attachment_id} in message {message.id}")


def attachment_bytes(item: Attachment) -> bytes:
    return blobs.get(item.sha256)


def inline_images(message: EmailMessage) -> dict[str, tuple[str, bytes]]:
    """Content-ID → (content type, bytes) of the message's inline images, for ``cid:`` URLs."""
    return {
        a.content_id: (a.content_type, blobs.get(a.sha256))
        for a in message.attachments
        if a.content_id and a.content_type.startswith("image/")
    }


def describe(message: EmailMessage) -> dict[str, Any]:
    """The JSON form of a message (``messages list --json`` and the API)."""
    sender = [{"name": message.from_name, "address": message.from_address}] if message.from_address else []
    return {
        "id": message.id,
        "folder": message.folder,
        "uid": message.uid_value,
        "message_id": message.message_id,
        "subject": message.subject,
        "from": sender,
        "to": message.mailboxes("to"),
        "cc": message.mailboxes("cc"),
        "date": _iso(message.date),
        "received_at": _iso(message.received_at),
        "size": message.size,
        "sha256": message.raw_sha256,
        "seen": message.seen,
        "status": message.status,
        "parse_error": message.parse_error,
        "attachments": [
            {
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "inline": a.inline,
            }
            for a in message.attachments
        ],
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def mark_seen(message: EmailMessage) -> None:
    """Mark the stored copy as read (only here: the server is never changed by reading)."""
    if not message.seen:
        message.seen = True
        db.session.commit()
