"""First run: a one-time setup token creates the first admin, and only while there is no user."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from sqlalchemy import delete, select

from webapp.database import writes
from webapp.extensions import db
from webapp.models import AppSetting, User
from webapp.models.setting import SETUP_TOKEN_HASH
from webapp.models.user import ROLE_ADMIN
from webapp.services.errors import Conflict, Invalid
from webapp.services.identity import users

TOKEN_NOT_VALID = "setup token: not valid (use the one make run printed, or run email-connector setup-token)"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def needs_setup() -> bool:
    """Is the app still waiting for its first admin (no user at all)?"""
    return users.count() == 0


@writes
def issue_token() -> str | None:
    """Return a new setup token (replacing any earlier one), or None once a user exists."""
    if not needs_setup():
        return None
    token = secrets.token_urlsafe(24)
    setting = db.session.get(AppSetting, SETUP_TOKEN_HASH)
    if setting is None:
        db.session.add(AppSetting(key=SETUP_TOKEN_HASH, value=_digest(token)))
    else:
        setting.value = _digest(token)
    db.session.commit()
    return token


def _stored_digest() -> str | None:
    return db.session.scalar(select(AppSetting.value).where(AppSetting.key == SETUP_TOKEN_HASH))


def _token_matches(stored: str | None, token: str) -> bool:
    return stored is not None and hmac.compare_digest(stored, _digest(token.strip()))


def problems(token: str, username: str, password: str) -> dict[str, str]:
    """What is wrong with this first-run form, field by field (all of it at once; empty when nothing)."""
    found: dict[str, str] = {}
    if token.strip() and not _token_matches(_stored_digest(), token):
        found["token"] = TOKEN_NOT_VALID
    checks = (("username", username, users.validate_username), ("password", password, users.validate_password))
    for field, value, check in checks:
        if value:
            try:
                check(value)
            except Invalid as exc:
                found[field] = str(exc)
    return found


@writes
def create_first_admin(token: str, username: str, password: str) -> User:
    """Create the first admin if ``token`` is the current setup token and there is still no user."""
    stored = _stored_digest()
    if not needs_setup():
        raise Conflict("setup is already done; log in instead")
    if not _token_matches(stored, token):
        raise Invalid(TOKEN_NOT_VALID)
    # Consuming the token and creating the admin commit together; a concurrent second try deletes nothing.
    consumed = db.session.execute(
        delete(AppSetting).where(AppSetting.key == SETUP_TOKEN_HASH, AppSetting.value == stored)
    )
    if consumed.rowcount != 1:  # type: ignore[attr-defined]
        db.session.rollback()
        raise Conflict("setup is already done; log in instead")
    return users.create(username, password, ROLE_ADMIN)


@writes
def discard_token() -> None:
    """Forget any pending setup token (an admin was created another way)."""
    db.session.execute(delete(AppSetting).where(AppSetting.key == SETUP_TOKEN_HASH))
    db.session.commit()
