"""Login sessions kept on the server, so that logging out, a new password or an admin ends them for good.

The cookie carries a random token; the table keeps only its SHA-256 (``key_of``), with the user, the
absolute end (``PERMANENT_SESSION_LIFETIME`` after login) and the last time it was seen (the idle end is
``SESSION_IDLE_SECONDS`` after that). A session that is not in the table, or is past either end, is no
session at all: the request is anonymous.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, or_, select, update

from webapp.database import write_transaction, writes
from webapp.extensions import db
from webapp.models import User, UserSession
from webapp.models.base import utcnow

# last_seen_at is written at most this often per session (it only has to be good to the minute).
TOUCH_INTERVAL = timedelta(seconds=60)


def key_of(token: str) -> str:
    """The stored form of a session token (also what signed inline-image links name)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _absolute() -> timedelta:
    return current_app.permanent_session_lifetime


def _idle() -> timedelta:
    return timedelta(seconds=int(current_app.config["SESSION_IDLE_SECONDS"]))


def _live(record: UserSession | None, now: datetime) -> bool:
    return record is not None and record.expires_at > now and record.last_seen_at + _idle() > now


@writes
def start(user: User, remote_addr: str | None, user_agent: str | None) -> str:
    """Open a session for ``user``; return its token (for the cookie only: it is stored hashed)."""
    now = utcnow()
    purge_expired(now, commit=False)
    token = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(
            token_hash=key_of(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=now + _absolute(),
            remote_addr=(remote_addr or "")[:64] or None,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    db.session.commit()
    return token


def resume(token: str) -> UserSession | None:
    """The live session for ``token`` (its last use recorded, to the minute), or None."""
    now = utcnow()
    key = key_of(token)
    record = db.session.get(UserSession, key)
    if record is None:
        return None
    # The writes below run in write transactions of their own (webapp.database), never with changes of the
    # caller pending (none are, when a request loads its user; if some were, the touch waits a request).
    can_write = not (db.session.new or db.session.dirty or db.session.deleted)
    if not _live(record, now):
        if can_write:
            end(token)
        return None
    if now - record.last_seen_at >= TOUCH_INTERVAL and can_write:
        with write_transaction():
            db.session.execute(
                update(UserSession)
                .where(UserSession.token_hash == key, UserSession.last_seen_at < now - TOUCH_INTERVAL)
                .values(last_seen_at=now)
            )
            db.session.commit()
        record = db.session.get(UserSession, key)  # None if it ended meanwhile
    return record


def by_key(key: str) -> UserSession | None:
    """The live session stored under ``key`` (see key_of), without recording a use."""
    record = db.session.get(UserSession, key)
    return record if _live(record, utcnow()) else None


@writes
def end(token: str) -> None:
    """End the session of ``token`` (logging out)."""
    db.session.execute(delete(UserSession).where(UserSession.token_hash == key_of(token)))
    db.session.commit()


@writes
def end_all(user: User, keep: str | None = None, *, commit: bool = True) -> int:
    """End every session of ``user`` except the one of token ``keep``; return how many ended."""
    query = delete(UserSession).where(UserSession.user_id == user.id)
    if keep is not None:
        query = query.where(UserSession.token_hash != key_of(keep))
    ended = db.session.execute(query).rowcount  # type: ignore[attr-defined]
    if commit:
        db.session.commit()
    return int(ended or 0)


def of_user(user: User) -> list[UserSession]:
    """The live sessions of ``user``, most recently used first."""
    now = utcnow()
    records = db.session.scalars(
        select(UserSession).where(UserSession.user_id == user.id).order_by(UserSession.last_seen_at.desc())
    )
    return [record for record in records if _live(record, now)]


@writes
def purge_expired(now: datetime | None = None, *, commit: bool = True) -> None:
    """Delete the sessions past their absolute or idle end (they open nothing; this keeps the table small)."""
    now = now or utcnow()
    db.session.execute(
        delete(UserSession).where(or_(UserSession.expires_at <= now, UserSession.last_seen_at <= now - _idle()))
    )
    if commit:
        db.session.commit()
