"""Users of the app and their roles."""

from __future__ import annotations

import unicodedata
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
    """A person who logs in. What the login cookie carries is a session token (models.session), not
    ``get_id()``: ending a session on the server ends it everywhere."""

    __tablename__ = "user"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    # The name as key_for() folds it: names are unique regardless of case and Unicode form.
    username_key: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=ROLE_USER)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # An IANA time zone name for the pages' times; None: the browser's own.
    timezone: Mapped[str | None] = mapped_column(String(64), default=None)

    grants: Mapped[list[AccountGrant]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def is_admin(self) -> bool:
        """Does the user have the admin role?"""
        return self.role == ROLE_ADMIN

    @staticmethod
    def key_for(username: str) -> str:
        """The name compared for uniqueness and login: NFKC, case-folded (Unicode caseless matching)."""
        name = unicodedata.normalize("NFKC", username).strip()
        return unicodedata.normalize("NFKC", name.casefold())
