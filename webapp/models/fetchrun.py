"""The history of fetches: one row per run of an account's fetch, whatever started it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utcnow


class RunStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"


class RunTrigger(StrEnum):
    PAGE = "page"  # Fetch Emails on the mailbox page
    SCHEDULE = "schedule"
    COMMAND = "command"  # email-connector fetch (queued or --inline)
    API = "api"  # webapp.connector.retrieve_email_messages
    IDLE = "idle"  # a subscription: the server announced new mail, or the gap after a (re)connect


class FetchRun(Base):
    __tablename__ = "fetch_run"
    __table_args__ = (Index("ix_fetch_run_account_started", "account_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("email_account.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(10), default=RunTrigger.PAGE)
    # The RQ job that ran it (None for a fetch run in its caller's process, e.g. `fetch --inline`).
    job_id: Mapped[str | None] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(10), default=RunStatus.RUNNING)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    stored: Mapped[int] = mapped_column(default=0)
    skipped: Mapped[int] = mapped_column(default=0)
    quarantined: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)  # the messages this run looked at
    total_on_server: Mapped[int] = mapped_column(default=0)  # every message in the fetched folders
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def ended(self) -> bool:
        """Has the run ended, whatever its outcome (no longer RUNNING)?"""
        return self.status != RunStatus.RUNNING
