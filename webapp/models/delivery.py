"""Webhooks an admin configured per account, and the record of every callback delivery."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utcnow

# What a webhook subscribes to: a fetch's events, and a subscription's (new mail, state changes).
# Each fits the ``event`` column (10 characters), which every test of events checks (test_event_names_fit).
EVENTS = ("fetch", "complete", "error", "new_email", "idle_state")
TEST = "test"  # sent on demand from the account page or `webhooks test`


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # to be (re)tried at next_attempt_at
    DELIVERED = "delivered"
    FAILED = "failed"  # given up: the Error logs say why
    HELD = "held"  # a batch's fetch event, until the batch's bodies and attachments are stored


PENDING, DELIVERED, FAILED, HELD = DeliveryStatus  # the names the callbacks and pages use


class Webhook(Base):
    __tablename__ = "webhook"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("email_account.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Fernet token of the HMAC secret (see services.secrets).
    secret_encrypted: Mapped[str] = mapped_column(Text)
    events: Mapped[list[str]] = mapped_column(JSON, default=lambda: list(EVENTS))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Delivery(Base):
    """One callback delivery; the unique key makes "recorded exactly once" hold across reruns."""

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("delivery_id", "target", name="uq_delivery_delivery_id_target"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[str] = mapped_column(String(300))
    target: Mapped[str] = mapped_column(String(2000))
    account_id: Mapped[int] = mapped_column(ForeignKey("email_account.id", ondelete="CASCADE"), index=True)
    webhook_id: Mapped[int | None] = mapped_column(ForeignKey("webhook.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(10))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default=PENDING, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # How long the last attempt took (the POST, or the callable), in milliseconds.
    duration_ms: Mapped[int | None] = mapped_column()

    @property
    def event_id(self) -> str:
        """The id the receiver sees (X-EmailConnector-Delivery): a redelivery keeps its original's."""
        return str(self.payload.get("delivery_id") or self.delivery_id)

    @property
    def redelivery_of(self) -> int | None:
        """The delivery (row id) this one sent again, if it is a redelivery."""
        kind, _, rest = self.delivery_id.partition(":")
        original = rest.partition(":")[0]
        return int(original) if kind == "redelivery" and original.isdigit() else None
