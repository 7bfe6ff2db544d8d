"""Users of the app and their roles."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.account import AccountGrant

ROLE_ADMIN = "admin"
ROLE_USER = "user"
ROLES = (ROLE_ADMIN, ROLE_USER)


class User(UserMixin, Base):
    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    # Lower-cased username: names are unique regardless of case.
    username_key: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=ROLE_USER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Changing the password ends every other session of this user (see get_id).
    session_version: Mapped[int] = mapped_column(default=1)
    # An IANA time zone name for the pages' times; None: the browser's own.
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)

    grants: Mapped[list[AccountGrant]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @staticmethod
    def key_for(username: str) -> str:
        return username.strip().casefold()
