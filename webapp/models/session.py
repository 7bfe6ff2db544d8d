"""Server-side login sessions: the cookie carries a random token, the database its hash and its lifetime."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow
from webapp.models.user import User


class UserSession(Base):
    __tablename__ = "user_session"

    # SHA-256 (hex) of the token in the cookie: a copy of this table opens no session.
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Touched at most once a minute (a write on every request would be a write per click).
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The absolute end; the idle end is last_seen_at plus the idle limit (both settings).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(255))

    user: Mapped[User] = relationship()
