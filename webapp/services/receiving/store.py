"""Storing messages: a raw message kept exactly with what was parsed from it — one at a time (sent mail), or
fetched batches in bulk (rows prepared in the download thread, inserted at once, bodies parsed after the
download and written in bulk) — and the complete messages a batch's fetch event carries."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, text, update
from sqlalchemy.orm import selectinload

from webapp.adapters.mime import parser
from webapp.adapters.mime.parser import Mailbox, ParsedMessage, ParsedPart
from webapp.database import writes
from webapp.extensions import db
from webapp.models import Attachment, EmailAccount, EmailMessage
from webapp.models.base import utcnow
from webapp.models.message import BodyState, MessageStatus
from webapp.services.platform import blobs
from webapp.services.reading import search
from webapp.services.receiving import parsing


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
    status: str = MessageStatus.RECEIVED,
    seen: bool = False,
    bcc: tuple[str, ...] = (),
) -> EmailMessage:
    """Store ``raw`` exactly, parse it in full and add the row to the session (the caller commits).

    For one message at a time (sent mail); fetched batches go through :func:`insert_received`.
    """
    now = utcnow()
    parsed = parser.parse(raw)
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
        seen=seen,
        body_state=BodyState.PARSED,
    )
    _fill(message, parsed)
    _attach(message, parsed)
    if bcc:
        message.bcc = [{"name": "", "address": a} for a in bcc]
    message.sort_at = message.date or now
    db.session.add(message)
    db.session.flush()
    search.index([message])
    return message


@dataclass(frozen=True)
class Received:
    """A message as fetched, for :func:`prepare_received`."""

    origin: Origin
    raw: bytes
    seen: bool = False
    flags: tuple[str, ...] = ()
    arrived_at: datetime | None = None
    oversize: int | None = None  # the real size when ``raw`` is only the header block
    pending_action: str | None = None


def prepare_received(item: Received, max_size: int, put: Callable[[bytes], str]) -> dict[str, Any]:
    """Store a fetched message's raw bytes with ``put`` (not flushed yet) and read its headers: its row for
    :func:`insert_received`. No database here unless ``put`` writes there, so with a blob folder the
    download thread can do it while the previous batch is being committed."""
    headers = parser.parse_headers(item.raw)
    row: dict[str, Any] = {
        "folder": item.origin.folder,
        "uidvalidity": item.origin.uidvalidity,
        "uid": item.origin.uid,
        "uidl": item.origin.uidl,
        "status": MessageStatus.RECEIVED,
        "raw_sha256": put(item.raw),
        "size": item.oversize or len(item.raw),
        "sort_at": headers.date or item.arrived_at,
        "seen": item.seen,
        "flags": " ".join(item.flags),
        "body_state": BodyState.PENDING,
        "pending_action": item.pending_action,
        "parse_error": None,
        **_header_values(headers),
    }
    if item.oversize is not None:
        row["body_state"] = BodyState.OVERSIZE
        row["parse_error"] = f"over the size limit: {item.oversize} bytes > {max_size}; only the headers were kept"
    return row


_NEXT_IDS = text("SELECT nextval(pg_get_serial_sequence('email_message', 'id')) FROM generate_series(1, :n)")


def insert_received(account: EmailAccount, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert prepared rows (:func:`prepare_received`) — raw bytes kept, headers read, bodies pending
    (:func:`complete_pending`) — and return their ids.

    One flush of the blob store and one multi-row INSERT for the batch (the caller commits).
    """
    if not rows:
        return []
    now = utcnow()
    values = [{**row, "account_id": account.id, "received_at": now, "sort_at": row["sort_at"] or now} for row in rows]
    blobs.sync()
    # render_nulls: rows whose None values differ would otherwise be inserted in separate statements
    # (the ORM leaves None out so column defaults apply; every key here is set on purpose). The ids come
    # back in no particular order: nothing needs to pair them with the rows.
    statement = insert(EmailMessage).execution_options(render_nulls=True)
    if db.session.get_bind().dialect.name == "postgresql":
        # Ids drawn from the sequence first, then a plain executemany (psycopg pipelines it): expanding
        # 500 rows into one INSERT … RETURNING costs more Python time than the database takes.
        ids = [int(i) for i in db.session.scalars(_NEXT_IDS, {"n": len(values)})]
        db.session.execute(statement, [{**row, "id": i} for row, i in zip(values, ids, strict=True)])
    else:
        ids = sorted(int(i) for i in db.session.scalars(statement.returning(EmailMessage.id), values))
    if any(row["body_state"] == BodyState.OVERSIZE for row in values):
        oversized = select(EmailMessage).where(EmailMessage.id.in_(ids), EmailMessage.body_state == BodyState.OVERSIZE)
        search.index(list(db.session.scalars(oversized)))
    return ids


def _header_values(parsed: ParsedMessage) -> dict[str, Any]:
    return {
        "message_id": parsed.message_id,
        "subject": parsed.subject,
        "from_name": parsed.sender.name if parsed.sender else "",
        "from_address": parsed.sender.address if parsed.sender else "",
        "to": _mailboxes(parsed.to),
        "cc": _mailboxes(parsed.cc),
        "bcc": _mailboxes(parsed.bcc),
        "reply_to": _mailboxes(parsed.reply_to),
        "date": parsed.date,
    }


def _attach(message: EmailMessage, parsed: ParsedMessage) -> None:
    for position, part in enumerate(parsed.parts):
        message.attachments.append(Attachment(**_part_values(position, part, blobs.put)))
    message.has_attachments = any(not a.inline for a in message.attachments)


@writes
def complete(message: EmailMessage) -> None:
    """Parse one pending message's bodies and parts now (the caller commits)."""
    if message.body_state != BodyState.PENDING:
        return
    try:
        parsed = parser.parse(blobs.get(message.raw_sha256))
    except blobs.BlobMissing:
        message.parse_error = parsing.MISSING
        message.body_state = BodyState.PARSED
        return
    _fill(message, parsed)
    _attach(message, parsed)
    message.body_state = BodyState.PARSED
    search.index([message])


def complete_pending(account: EmailAccount, chunk: int = 200) -> tuple[int, int]:
    """Parse the bodies of every pending message of the account, in parallel processes when many; each
    chunk is written while the next one is parsed.

    Returns (messages parsed, of which could not be parsed: quarantined).
    """
    done = quarantined = 0
    last_id = 0
    with parsing.pool(blobs.folder_root(), blobs.get) as parser_pool:
        ahead: tuple[list[int], parsing.Result] | None = None
        while True:
            rows = db.session.execute(
                select(EmailMessage.id, EmailMessage.raw_sha256)
                .where(
                    EmailMessage.account_id == account.id,
                    EmailMessage.body_state == BodyState.PENDING,
                    EmailMessage.id > last_id,
                )
                .order_by(EmailMessage.id)
                .limit(chunk)
            ).all()
            current = None
            if rows:
                last_id = rows[-1][0]
                current = ([i for i, _digest in rows], parser_pool.start([digest for _id, digest in rows]))
            if ahead is not None:
                ids, result = ahead
                quarantined += write_parsed(list(zip(ids, result(), strict=True)))
                done += len(ids)
            if current is None:
                return done, quarantined
            ahead = current


def _put_later(data: bytes) -> str:
    return blobs.put(data, durable=False)  # flushed once before the commit (write_parsed)


@writes
def write_parsed(pairs: Sequence[tuple[int, ParsedMessage]]) -> int:
    """Write parsed bodies, parts and search rows of messages still pending, and commit; return how many
    could not be parsed (quarantined).

    Bulk statements, not ORM objects: one UPDATE (executemany), one INSERT of the parts and one of the
    search rows per call, after one flush of the blob store — loading each message and its attachments
    took the fetch more time than the download.
    """
    if not pairs:
        return 0
    query = select(EmailMessage.id, EmailMessage.subject, EmailMessage.from_name, EmailMessage.from_address).where(
        EmailMessage.id.in_([i for i, _parsed in pairs]), EmailMessage.body_state == BodyState.PENDING
    )
    if db.session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()  # a page view may be parsing one of them right now (ensure_parsed)
    # The headers were stored with the row (prepare_received); the bodies join them here.
    pending = {i: (subject, f"{name} {address}") for i, subject, name, address in db.session.execute(query)}
    updates: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    documents: list[dict[str, object]] = []
    quarantined = 0
    for message_id, parsed in pairs:
        if message_id not in pending:
            continue
        subject, sender = pending.pop(message_id)  # the same id twice in one call: written once
        quarantined += parsed.error is not None
        rows = [
            {"message_id": message_id, **_part_values(position, part, _put_later)}
            for position, part in enumerate(parsed.parts)
        ]
        parts.extend(rows)
        updates.append(
            {
                "id": message_id,
                "text_body": parsed.text,
                "html_body": parsed.html,
                "parse_error": parsed.error,
                "defects": "; ".join(parsed.defects)[:2000],
                "has_attachments": any(not row["inline"] for row in rows),
                "body_state": BodyState.PARSED,
            }
        )
        documents.append(search.document(message_id, subject, sender, parsed.text, parsed.html))
    if updates:
        db.session.execute(update(EmailMessage), updates)
        if parts:
            db.session.execute(insert(Attachment), parts)
        search.index_documents(documents)
        blobs.sync()
    db.session.commit()
    return quarantined


def _part_values(position: int, part: ParsedPart, put: Callable[[bytes], str]) -> dict[str, Any]:
    """An attachment row's values; bytes not stored yet (``part.sha256`` empty) are stored with ``put``."""
    return {
        "position": position,
        "filename": (part.filename or "attachment")[:255],
        "content_type": part.content_type[:255],
        "size": part.size if part.sha256 else len(part.content),
        "sha256": part.sha256 or put(part.content),
        "content_id": part.content_id[:255],
        "inline": part.inline,
    }


def _fill(message: EmailMessage, parsed: ParsedMessage) -> None:
    for name, value in _header_values(parsed).items():
        setattr(message, name, value)
    message.text_body = parsed.text
    message.html_body = parsed.html
    message.parse_error = parsed.error
    message.defects = "; ".join(parsed.defects)[:2000]


def _mailboxes(values: tuple[Mailbox, ...]) -> list[dict[str, str]]:
    return [{"name": m.name, "address": m.address} for m in values]


@writes
def refresh_statistics() -> None:
    """Refresh PostgreSQL's planner statistics of the message tables (after a big fetch)."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("ANALYZE email_message, message_search"))
        db.session.commit()


def complete_batch(ids: Sequence[int]) -> list[EmailMessage] | None:
    """The messages ``ids`` with their attachments, in id order — or None while any is still being parsed
    (a ``fetch`` event waits for complete messages). Messages removed meanwhile are left out."""
    if not ids:
        return []
    waiting = select(EmailMessage.id).where(
        EmailMessage.id.in_(list(ids)), EmailMessage.body_state == BodyState.PENDING
    )
    if db.session.scalar(waiting.limit(1)) is not None:
        return None
    query = select(EmailMessage).where(EmailMessage.id.in_(list(ids))).order_by(EmailMessage.id)
    return list(db.session.scalars(query.options(selectinload(EmailMessage.attachments))))
