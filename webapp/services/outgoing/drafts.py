"""Drafts: what a user wrote, kept (attachments in the blob store) until it is sent or queued.

A draft need not be a valid message yet: its fields are kept as typed. A queued or failed message
cancelled back to a draft is read from its stored message instead. Reply, Reply all and Forward make a
draft from a received message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message
from email.policy import compat32

from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from webapp.adapters.mime import addresses
from webapp.database import write_transaction
from webapp.extensions import db
from webapp.models import Attachment, EmailAccount, EmailMessage
from webapp.models.base import MAX_ID, utcnow
from webapp.models.message import BodyState, MessageStatus
from webapp.services.errors import Conflict, Invalid, NotFound, PartlySent
from webapp.services.outgoing import delivery, outbox, sending
from webapp.services.outgoing.sending import Draft, OutgoingAttachment
from webapp.services.platform import blobs

LABELS = {"to": "To", "cc": "CC", "bcc": "BCC", "reply_to": "Reply-To", "subject": "Subject", "text": "Text",
          "html": "HTML", "in_reply_to": "In-Reply-To", "references": "References"}  # fmt: skip
FIELDS = ("to", "cc", "bcc", "reply_to", "subject", "text", "html", "in_reply_to", "references")
_EMPTY_SHA = blobs.sha256(b"")
_MSG_IDS = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")
_PREFIX = re.compile(r"^\s*((re|fwd?|aw|wg|sv|vs)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def get(account: EmailAccount, draft_id: int) -> EmailMessage:
    """The account's draft ``draft_id``; NotFound otherwise."""
    try:
        message = db.session.get(EmailMessage, draft_id) if 0 < draft_id <= MAX_ID else None
    except DBAPIError:  # an id the database's column cannot hold (PostgreSQL: integer out of range)
        db.session.rollback()
        message = None
    if message is None or message.account_id != account.id or message.status != MessageStatus.DRAFT:
        raise NotFound(f"no draft {draft_id}")
    return message


def draft_of(message: EmailMessage, *, with_attachments: bool = True) -> Draft:
    """What ``message`` (a draft, or any stored outgoing message) says, as a :class:`Draft`, attachments
    read from the blob store."""
    attachments = tuple(
        OutgoingAttachment(a.filename, blobs.get(a.sha256), a.content_type)
        for a in (message.attachments if with_attachments else ())
        if not a.inline
    )
    if message.draft_fields is not None:
        values = {k: str(message.draft_fields.get(k, "")) for k in FIELDS}
        return Draft(**values, attachments=attachments)

    def joined(field: str) -> str:
        return "; ".join(
            addresses.format_mailbox(addresses.Mailbox(m["address"], m["name"])) for m in message.mailboxes(field)
        )

    in_reply_to, references = _sent_thread(message)
    return Draft(
        to=joined("to"),
        cc=joined("cc"),
        bcc=joined("bcc"),
        reply_to=joined("reply_to"),
        subject=message.subject,
        text=message.text_body,
        html=message.html_body,
        in_reply_to=in_reply_to,
        references=references,
        attachments=attachments,
    )


def _sent_thread(message: EmailMessage) -> tuple[str, str]:
    """The In-Reply-To and References a built message carries (a cancelled reply keeps its thread)."""
    headers = _headers(message)
    if headers is None:
        return "", ""
    return " ".join(_MSG_IDS.findall(str(headers.get("In-Reply-To", "")))), " ".join(
        _MSG_IDS.findall(str(headers.get("References", "")))
    )


def _headers(message: EmailMessage) -> Message | None:
    try:
        return message_from_bytes(blobs.get(message.raw_sha256).split(b"\r\n\r\n", 1)[0], policy=compat32)
    except blobs.BlobMissing:
        return None


def draft_of_fields(message: EmailMessage) -> dict[str, str]:
    """The text fields of a draft as the form shows them (attachments aside)."""
    if message.draft_fields is not None:
        return {k: str(message.draft_fields.get(k, "")) for k in FIELDS}
    draft = draft_of(message, with_attachments=False)
    return {k: getattr(draft, k) for k in FIELDS}


def save(
    account: EmailAccount,
    draft: Draft,
    *,
    draft_id: int | None = None,
    keep_attachments: Sequence[int] | None = None,
) -> EmailMessage:
    """Create or update a draft. ``draft.attachments`` are added; of the draft's stored attachments, those
    in ``keep_attachments`` stay (all when None). Nothing is validated but lengths: a draft may be half done."""
    values = {name: getattr(draft, name) for name in FIELDS}
    for name, value in values.items():
        if len(value) > 10_000_000:
            raise Invalid(f"{LABELS.get(name, name)}: too long for a draft")
        if "\0" in value:  # PostgreSQL cannot store NUL in text, and no mail may carry it
            raise Invalid(f"{LABELS.get(name, name)}: a NUL (control character) is not allowed")
    keep = [i for i in keep_attachments or () if 0 < i <= MAX_ID] if keep_attachments is not None else None
    if any("\0" in upload.filename for upload in draft.attachments):
        raise Invalid("attachment filename: a NUL (control character) is not allowed")
    stored = [(a.filename, blobs.put(a.content), a.content_type, len(a.content)) for a in draft.attachments]
    with write_transaction():
        if draft_id is None:
            message = EmailMessage(
                account_id=account.id,
                folder=outbox.OUTBOX_FOLDER,
                status=MessageStatus.DRAFT,
                raw_sha256=_EMPTY_SHA,
                seen=True,
                from_address=account.address,
                from_name=account.display_name,
            )
            db.session.add(message)
        else:
            message = get(account, draft_id)
            if keep is not None:
                for attachment in list(message.attachments):
                    if attachment.id not in keep:
                        message.attachments.remove(attachment)
        message.draft_fields = values
        message.subject = draft.subject
        message.text_body = draft.text
        message.html_body = draft.html
        message.to = _loose_mailboxes(draft.to)
        message.cc = _loose_mailboxes(draft.cc)
        message.bcc = _loose_mailboxes(draft.bcc)
        message.sort_at = message.received_at = utcnow()
        position = max((a.position for a in message.attachments), default=-1) + 1
        for offset, (filename, digest, content_type, size) in enumerate(stored):
            message.attachments.append(
                Attachment(
                    position=position + offset,
                    filename=filename[:255],
                    content_type=(content_type or "application/octet-stream")[:255],
                    size=size,
                    sha256=digest,
                )
            )
        message.has_attachments = bool(message.attachments)
        db.session.commit()
    return message


def _loose_mailboxes(value: str) -> list[dict[str, str]]:
    """The addresses of a half-typed field, for lists: those that parse; the rest are kept in draft_fields."""
    result = []
    try:
        items = addresses.split(value)
    except addresses.AddressError:
        return []
    for item in items:
        try:
            mailbox = addresses.parse_mailbox(item)
        except addresses.AddressError:
            continue
        result.append({"name": mailbox.name, "address": mailbox.address})
    return result


def delete(account: EmailAccount, draft_id: int) -> None:
    """Remove a draft (its attachments' bytes go with the next blob collection if nothing else names them)."""
    with write_transaction():
        db.session.delete(get(account, draft_id))
        db.session.commit()


def send(account: EmailAccount, draft_id: int) -> EmailMessage | None:
    """Send draft ``draft_id`` now; on success it becomes the Sent message (the draft is removed). On
    failure the draft stays as it was, and the error is raised. Two requests sending the same draft at
    once (a double click, two tabs): one sends, the other gets Conflict."""
    draft = _take(account, draft_id)
    try:
        sent = sending.send(account, draft)
    except PartlySent:
        _remove(draft_id)  # it is in Sent: a second Send would reach the accepted recipients again
        raise
    except BaseException:
        _give_back(draft_id)
        raise
    _remove(draft_id)
    return sent


def queue(account: EmailAccount, draft_id: int, send_after: datetime | None = None) -> EmailMessage:
    """Queue draft ``draft_id`` (built now); the draft is removed once queued — once, however many
    requests ask at the same time (the others get Conflict)."""
    draft = _take(account, draft_id)
    try:
        queued = outbox.enqueue(account, draft, send_after=send_after)
    except BaseException:
        _give_back(draft_id)
        raise
    _remove(draft_id)
    return queued


# A draft being sent or queued right now; a conditional UPDATE makes exactly one request its sender.
_TAKER = delivery.DRAFT_TAKER


def _take(account: EmailAccount, draft_id: int) -> Draft:
    message = get(account, draft_id)
    with write_transaction():
        taken = db.session.execute(
            update(EmailMessage)
            .where(EmailMessage.id == draft_id, EmailMessage.status == MessageStatus.DRAFT)
            .values(status=MessageStatus.SENDING, lease_owner=_TAKER, lease_until=utcnow() + timedelta(hours=1))
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        db.session.commit()
    if not taken:
        raise Conflict(f"draft {draft_id} is being sent or queued already")
    db.session.refresh(message)
    return draft_of(message)


def _give_back(draft_id: int) -> None:
    db.session.rollback()
    with write_transaction():
        db.session.execute(
            update(EmailMessage)
            .where(EmailMessage.id == draft_id, EmailMessage.lease_owner == _TAKER)
            .values(status=MessageStatus.DRAFT, lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def _remove(draft_id: int) -> None:
    with write_transaction():
        message = db.session.get(EmailMessage, draft_id)
        if message is not None and message.lease_owner == _TAKER:
            db.session.delete(message)
        db.session.commit()


def reply(account: EmailAccount, original: EmailMessage, *, to_all: bool) -> EmailMessage:
    """A draft answering ``original``: to its Reply-To (else From), with everyone else on To and CC for
    Reply all (never the account itself); ``Re:`` subject, In-Reply-To and References, the text quoted."""
    own = {account.address.casefold()}
    senders = original.mailboxes("reply_to") or [{"name": original.from_name, "address": original.from_address}]
    to = [m for m in senders if m["address"]]
    cc: list[dict[str, str]] = []
    if to_all:
        seen = {m["address"].casefold() for m in to} | own
        for mailbox in original.mailboxes("to") + original.mailboxes("cc"):
            key = mailbox["address"].casefold()
            if mailbox["address"] and key not in seen:
                seen.add(key)
                cc.append(mailbox)
    in_reply_to, references = _thread(original)
    when = original.date.strftime("%Y-%m-%d %H:%M UTC") if original.date else "an earlier message"
    quoted = "\n".join(f"> {line}" for line in (original.text_body or "").splitlines())
    draft = Draft(
        to=_join(to),
        cc=_join(cc),
        subject=_prefixed("Re: ", original.subject),
        text=f"\n\nOn {when}, {original.sender_label} wrote:\n{quoted}\n",
        in_reply_to=in_reply_to,
        references=references,
    )
    return save(account, draft)


def forward(account: EmailAccount, original: EmailMessage, *, as_attachment: bool = False) -> EmailMessage:
    """A draft forwarding ``original``: ``Fwd:`` subject, the original's text below a header block, and its
    attachments — or the whole original as an attached ``.eml`` (``as_attachment``)."""
    header = [
        "---------- Forwarded message ----------",
        f"From: {original.sender_label} <{original.from_address}>"
        if original.from_name
        else f"From: {original.from_address}",
        f"Date: {original.date.strftime('%Y-%m-%d %H:%M UTC') if original.date else ''}",
        f"Subject: {original.subject}",
        f"To: {_join(original.mailboxes('to'))}",
    ]
    if as_attachment and original.body_state == BodyState.OVERSIZE:
        raise Invalid("this message was over the size limit: only its headers were kept, so it cannot be attached")
    body = "\n".join(header) + "\n\n" + (original.text_body or "")
    if as_attachment:
        body = f"The forwarded message is attached: {original.subject or '(no subject)'}"
    draft = Draft(to="", subject=_prefixed("Fwd: ", original.subject), text="\n\n" + body)
    forwarded = save(account, draft)
    with write_transaction():
        forwarded = get(account, forwarded.id)
        if as_attachment:
            name = (re.sub(r"[^\w.\- ]+", "_", original.subject)[:80].strip() or "message") + ".eml"
            forwarded.attachments.append(
                Attachment(
                    position=0,
                    filename=name,
                    content_type="message/rfc822",
                    size=original.size,
                    sha256=original.raw_sha256,
                )
            )
        else:
            for position, part in enumerate(a for a in original.attachments if not a.inline):
                forwarded.attachments.append(
                    Attachment(
                        position=position,
                        filename=part.filename,
                        content_type=part.content_type,
                        size=part.size,
                        sha256=part.sha256,
                    )
                )
        forwarded.has_attachments = bool(forwarded.attachments)
        db.session.commit()
    return forwarded


def _thread(original: EmailMessage) -> tuple[str, str]:
    """In-Reply-To and References for an answer to ``original`` (RFC 5322 §3.6.4)."""
    own = f"<{(original.message_id or '').strip().strip('<>')}>"
    if not _MSG_IDS.fullmatch(own):
        return "", ""  # no usable Message-ID (missing, or not id@domain): the reply starts a thread
    headers = _headers(original)
    earlier = " ".join(str(headers.get("References", "")).split()) if headers is not None else ""
    ids = _MSG_IDS.findall(earlier)[-20:]  # a long thread keeps its newest ids
    return own, " ".join([*ids, own])


def _join(mailboxes: Sequence[dict[str, str]]) -> str:
    return "; ".join(addresses.format_mailbox(addresses.Mailbox(m["address"], m.get("name", ""))) for m in mailboxes)


def _prefixed(prefix: str, subject: str) -> str:
    return prefix + _PREFIX.sub("", subject or "").strip()
