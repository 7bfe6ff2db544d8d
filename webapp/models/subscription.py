"""A subscription to an account's incoming mail (IMAP IDLE), held by one subscriber process at a time."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utcnow


class SubscriptionState(StrEnum):
    """The Mendix states, plus CONNECTED and RECONNECTED (and STOPPED, WAITING: not yet or no longer held)."""

    WAITING = "WAITING"  # subscribed; no subscriber process holds it (yet)
    CONNECTED = "CONNECTED"
    RECONNECTED = "RECONNECTED"
    CONNECTIONTOSERVERLOST = "CONNECTIONTOSERVERLOST"
    CONNECTIONRETRYEXHAUSTED = "CONNECTIONRETRYEXHAUSTED"
    SUBSCRIPTIONFAILED = "SUBSCRIPTIONFAILED"
    STOPPED = "STOPPED"  # unsubscribed


# States after which the subscriber stops trying until someone starts the subscription again.
GIVEN_UP = (SubscriptionState.CONNECTIONRETRYEXHAUSTED, SubscriptionState.SUBSCRIPTIONFAILED)


class Subscription(Base):
    __tablename__ = "subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("email_account.id", ondelete="CASCADE"), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=false())
    # Dotted paths of Python callables (run in the subscriber process) or URLs of the account's webhooks.
    on_new_email: Mapped[str | None] = mapped_column(String(500))
    on_state_changed: Mapped[str | None] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(32), default=SubscriptionState.WAITING)
    state_since: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    state_comment: Mapped[str | None] = mapped_column(Text)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    holder: Mapped[str | None] = mapped_column(String(200))  # the subscriber process holding it, as it said
    # Bumped by start/stop: a subscriber notices a restart of a given-up subscription by it.
    generation: Mapped[int] = mapped_column(default=0, server_default="0")

    @property
    def given_up(self) -> bool:
        """Has the subscriber stopped trying (until the subscription is started again)?"""
        return self.state in GIVEN_UP
