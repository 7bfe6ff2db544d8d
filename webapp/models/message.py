"""Messages (the Mendix EmailMessage) and their attachments; bytes live in the blob store."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow


class MessageStatus(StrEnum):
    """RECEIVED for fetched mail; the rest is the life of outgoing mail (Mendix names)."""

    RECEIVED = "RECEIVED"
    DRAFT = "DRAFT"
    QUEUED = "QUEUED"
    SENDING = "SENDING"
    SENT = "SENT"
    FAILED = "FAILED"


class BodyState(StrEnum):
    PARSED = "parsed"
    PENDING = "pending"  # headers stored, bodies not parsed yet
    OVERSIZE = "oversize"  # over the size limit: only the headers were kept


SENT_FOLDER = "Sent"


class EmailMessage(Base):
    __tablename__ = "email_message"
    __table_args__ = (
        # What makes fetching idempotent (design §4): one row per server message.
        UniqueConstraint("account_id", "folder", "uidvalidity", "uid", name="uq_email_message_imap_uid"),
        UniqueConstraint("account_id", "uidl", name="uq_email_message_pop3_uidl"),
        Index("ix_email_message_listing", "account_id", "folder", "sort_at", "id"),
        Index("ix_email_message_unread", "account_id", "folder", "seen", "sort_at", "id"),
        # The outbox: claiming an account's due mail, and the sweep of expired leases.
        Index("ix_email_message_outbox", "account_id", "status", "id"),
        Index("ix_email_message_lease", "status", "lease_until"),
        # A bulk file's line key: a line queued before is skipped, so a rerun never doubles mail.
        Index("uq_email_message_queue_key", "account_id", "queue_key", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("email_account.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    uidl: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(10), default=MessageStatus.RECEIVED)

    message_id: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text, default="")
    from_name: Mapped[str] = mapped_column(Text, default="")
    from_address: Mapped[str] = mapped_column(Text, default="")
    # Lists of {"name", "address"}.
    to: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    cc: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    bcc: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    reply_to: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The Date header when there is one, else when it arrived: what "newest first" sorts by.
    sort_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    size: Mapped[int] = mapped_column(default=0)
    raw_sha256: Mapped[str] = mapped_column(String(64), index=True)
    text_body: Mapped[str] = mapped_column(Text, default="")
    html_body: Mapped[str] = mapped_column(Text, default="")
    has_attachments: Mapped[bool] = mapped_column(default=False)
    seen: Mapped[bool] = mapped_column(default=False)
    flags: Mapped[str] = mapped_column(Text, default="")
    # Why the message could not be parsed (kept raw, shown as such), and lesser defects found.
    parse_error: Mapped[str | None] = mapped_column(Text)
    defects: Mapped[str] = mapped_column(Text, default="")
    # "parsed"; "pending" (headers stored, bodies not parsed yet); "oversize" (only the headers were kept).
    body_state: Mapped[str] = mapped_column(String(8), default=BodyState.PARSED, index=True)
    # An after-fetch action (seen, move, delete) still to be applied on the server after the commit.
    pending_action: Mapped[str | None] = mapped_column(String(6))

    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The outbox (services.outgoing.queue). Scheduled send: not before this time.
    send_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The worker sending it (SENDING) and until when its claim holds; an expired claim is swept.
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "data": the worker was about to send (or was sending) DATA, committed before it did.
    send_stage: Mapped[str | None] = mapped_column(String(8))
    # The worker stopped inside the DATA window: the server may have the message. Never resent silently.
    possibly_sent: Mapped[bool] = mapped_column(default=False)
    # The envelope recipients, fixed at enqueue; those the server accepted (never sent to again).
    envelope: Mapped[list[str] | None] = mapped_column(JSON)
    accepted: Mapped[list[str] | None] = mapped_column(JSON)
    queue_key: Mapped[str | None] = mapped_column(String(200))
    # A draft as the user wrote it (to, cc, bcc, reply_to, subject, text, html, in_reply_to, references):
    # it need not be a valid message yet. Its attachments are Attachment rows; it has no bytes of its own.
    draft_fields: Mapped[dict[str, str] | None] = mapped_column(JSON)

    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="message",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Attachment.position",
    )

    @property
    def uid_value(self) -> int | str | None:
        """The IMAP UID, or the POP3 UIDL string."""
        return self.uid if self.uid is not None else self.uidl

    @property
    def sender_label(self) -> str:
        """The sender as lists show it: the display name, else the address."""
        return self.from_name or self.from_address

    def mailboxes(self, field: str) -> list[dict[str, Any]]:
        """The mailboxes of the address ``field`` (``to``, ``cc``, …) as name/address dicts, blanks filled in."""
        value = getattr(self, field) or []
        return [{"name": m.get("name", ""), "address": m.get("address", "")} for m in value]


class Attachment(Base):
    __tablename__ = "attachment"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("email_message.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_id: Mapped[str] = mapped_column(String(255), default="")
    inline: Mapped[bool] = mapped_column(default=False)

    message: Mapped[EmailMessage] = relationship(back_populates="attachments")


class Blob(Base):
    """Blob bytes in the database (``BLOB_STORE = "database"``), for web and workers on several machines."""

    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int]
    data: Mapped[bytes]
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
