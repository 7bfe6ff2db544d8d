"""Users: creating, authenticating, passwords, roles and account grants."""

from __future__ import annotations

import unicodedata

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from webapp.database import writes
from webapp.extensions import db
from webapp.models import AccountGrant, EmailAccount, User
from webapp.models.base import MAX_ID
from webapp.models.user import ROLE_ADMIN, ROLE_USER, ROLES
from webapp.services.errors import Conflict, Invalid, NotFound
from webapp.services.identity import sessions, throttle

MIN_PASSWORD_LENGTH = 8
# Compared against when the user does not exist, so timing does not reveal which names exist.
_DUMMY_HASH = generate_password_hash("not a real password")


class LoginThrottled(Invalid):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"Too many failed logins. Try again in {retry_after} seconds.")
        self.retry_after = retry_after


def validate_username(username: str) -> str:
    """The name in NFKC form, if it has 1 to 150 characters and none of them is a space or an invisible
    one (controls, format characters such as bidi overrides and zero-width ones, unassigned, private)."""
    name = unicodedata.normalize("NFKC", username).strip()
    if not name or len(name) > 150 or any(c.isspace() or unicodedata.category(c)[0] in "CZ" for c in name):
        raise Invalid("username: 1 to 150 characters, no spaces, control or invisible characters")
    return name


def validate_password(password: str) -> str:
    """``password`` when it has at least ``MIN_PASSWORD_LENGTH`` characters and no NUL; Invalid otherwise."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid(f"password: at least {MIN_PASSWORD_LENGTH} characters")
    if "\0" in password:
        raise Invalid("password: NUL is not allowed")
    return password


def count() -> int:
    """How many users there are."""
    return db.session.scalar(select(func.count(User.id))) or 0


@writes
def create(username: str, password: str, role: str = ROLE_USER, *, commit: bool = True) -> User:
    """Create a user; the name must be unique regardless of case."""
    if role not in ROLES:
        raise Invalid(f"role: one of {', '.join(ROLES)}")
    name = validate_username(username)
    validate_password(password)
    if find(name) is not None:
        raise Conflict(f"a user named {name!r} already exists")
    user = User(
        username=name,
        username_key=User.key_for(name),
        password_hash=generate_password_hash(password),
        role=role,
    )
    db.session.add(user)
    if commit:
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            raise Conflict(f"a user named {name!r} already exists") from None
    return user


def find(username: str) -> User | None:
    """The user named ``username`` (compared as :meth:`User.key_for` folds it), or None."""
    return db.session.scalar(select(User).where(User.username_key == User.key_for(username)))


def get(username: str) -> User:
    """The user named ``username``; NotFound when there is none."""
    user = find(username)
    if user is None:
        raise NotFound(f"no user named {username!r}")
    return user


def by_id(user_id: int) -> User | None:
    """The user with id ``user_id``, or None (out-of-range ids included)."""
    return db.session.get(User, user_id) if 0 < user_id <= MAX_ID else None


def all_users() -> list[User]:
    """Every user, ordered by name."""
    return list(db.session.scalars(select(User).order_by(User.username_key)))


def authenticate(username: str, password: str, remote_addr: str | None) -> User | None:
    """Return the user when the password matches; throttled per name and address, and per address,
    across processes (services/throttle.py)."""
    wait = throttle.take(username, remote_addr)
    if wait:
        raise LoginThrottled(wait)
    user = find(username)
    ok = check_password_hash(user.password_hash if user else _DUMMY_HASH, password)
    if user is None or not ok:
        return None
    throttle.succeeded(username, remote_addr)
    return user


@writes
def set_password(user: User, password: str, keep_session: str | None = None) -> None:
    """Set a new password; every session of this user ends, except the one of token ``keep_session``."""
    validate_password(password)
    user.password_hash = generate_password_hash(password)
    sessions.end_all(user, keep_session, commit=False)
    db.session.commit()


def change_own_password(
    user: User, current: str, new: str, remote_addr: str | None, keep_session: str | None = None
) -> None:
    """Change one's own password; ``current`` is checked like a login (and throttled like one)."""
    validate_password(new)
    wait = throttle.take(user.username, remote_addr)
    if wait:
        raise LoginThrottled(wait)
    if not check_password_hash(user.password_hash, current):
        raise Invalid("current password: does not match")
    throttle.succeeded(user.username, remote_addr)
    set_password(user, new, keep_session)


@writes
def set_role(user: User, role: str, keep_session: str | None = None) -> None:
    """Give ``user`` another role; a change ends their sessions (except the one of ``keep_session``)."""
    if role not in ROLES:
        raise Invalid(f"role: one of {', '.join(ROLES)}")
    if user.role == role:
        return
    if user.role == ROLE_ADMIN and _admin_count() <= 1:
        raise Conflict("the last admin cannot lose the admin role")
    user.role = role
    sessions.end_all(user, keep_session, commit=False)
    db.session.commit()


@writes
def end_sessions(user: User, keep_session: str | None = None) -> int:
    """End every session of ``user`` (except the one of ``keep_session``); return how many ended."""
    return sessions.end_all(user, keep_session)


@writes
def remove(user: User) -> None:
    """Remove the user, their grants and their sessions."""
    if user.is_admin and _admin_count() <= 1:
        raise Conflict("the last admin cannot be removed")
    sessions.end_all(user, commit=False)
    db.session.delete(user)
    db.session.commit()


def _admin_count() -> int:
    """How many admins there are, with their rows locked until the caller commits (PostgreSQL): two admins
    demoting or removing each other at once cannot both see the other as the remaining one."""
    return len(db.session.scalars(select(User.id).where(User.role == ROLE_ADMIN).with_for_update()).all())


@writes
def grant(user: User, account: EmailAccount | int, *, read: bool, send: bool) -> EmailAccount:
    """Set what ``user`` may do with ``account`` (or the account of that id; NotFound when there is none);
    neither right removes the grant. Returns the account."""
    if isinstance(account, int):
        found = db.session.get(EmailAccount, account) if 0 < account <= MAX_ID else None
        if found is None:
            raise NotFound(f"no account {account}")
        account = found
    user_id, account_id = user.id, account.id
    for _attempt in range(2):
        existing = db.session.scalar(
            select(AccountGrant).where(AccountGrant.user_id == user_id, AccountGrant.account_id == account_id)
        )
        if not read and not send:
            if existing is not None:
                db.session.delete(existing)
            db.session.commit()
            return account
        if existing is None:
            existing = AccountGrant(user_id=user_id, account_id=account_id)
            db.session.add(existing)
        existing.can_read = read
        existing.can_send = send
        try:
            db.session.commit()
        except IntegrityError:  # another admin granted the same account at the same moment: update theirs
            db.session.rollback()
            continue
        return account
    raise Conflict("the access was changed by someone else at the same moment; try again")


def grants_of(user: User) -> list[AccountGrant]:
    """The account grants of ``user``, ordered by account name."""
    return list(
        db.session.scalars(
            select(AccountGrant)
            .join(AccountGrant.account)
            .where(AccountGrant.user_id == user.id)
            .order_by(EmailAccount.name_key)
        )
    )


def visible_accounts(user: User) -> list[EmailAccount]:
    """Admins see every account; users see the accounts granted to them."""
    query = select(EmailAccount).order_by(EmailAccount.name_key)
    if not user.is_admin:
        query = query.join(AccountGrant).where(AccountGrant.user_id == user.id)
    return list(db.session.scalars(query))


def can_read(user: User, account: EmailAccount) -> bool:
    """May ``user`` read the mail of ``account`` (an admin, or granted read)?"""
    return user.is_admin or any(g.account_id == account.id and g.can_read for g in user.grants)


def can_send(user: User, account: EmailAccount) -> bool:
    """May ``user`` send from ``account`` (an admin, or granted send)?"""
    return user.is_admin or any(g.account_id == account.id and g.can_send for g in user.grants)
