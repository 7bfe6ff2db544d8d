"""Role and grant checks for routes."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from flask import abort
from flask_login import current_user, login_required

from webapp.models import EmailAccount, EmailMessage, User
from webapp.services.account import accounts
from webapp.services.errors import NotFound
from webapp.services.identity import users
from webapp.services.reading import messages

F = TypeVar("F", bound=Callable[..., Any])


def admin_required(view: F) -> F:
    """Logged in and admin, else 403 (or the login page when not logged in)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_admin:
            abort(403, "This page is for admins.")
        return view(*args, **kwargs)

    return cast(F, login_required(wrapper))


def readable_account(account_id: int, user: User | None = None) -> EmailAccount:
    """The account, if the current user (or ``user``) may read it (else 404 or 403)."""
    account = _account(account_id)
    if not users.can_read(user or current_user, account):
        abort(403, "This account is not granted to you.")
    return account


def sendable_account(account_id: int) -> EmailAccount:
    """The account, if the current user may send from it (else 404 or 403)."""
    account = _account(account_id)
    if not users.can_send(current_user, account):
        abort(403, "You may not send from this account.")
    return account


def readable_message(message_id: int, user: User | None = None) -> EmailMessage:
    """The message, if the current user (or ``user``) may read its account (else 404 or 403)."""
    try:
        message = messages.get(message_id)
    except NotFound:
        abort(404)
    account = readable_account(message.account_id, user)
    if message.status in _UNSENT and not users.can_send(user or current_user, account):
        # Drafts and mail waiting to go out belong to those who may send from the account.
        abort(403, "This message has not been sent: it is for those who may send from this account.")
    return message


_UNSENT = frozenset({"DRAFT", "QUEUED", "SENDING", "FAILED"})


def _account(account_id: int) -> EmailAccount:
    try:
        return accounts.by_id(account_id)
    except NotFound:
        abort(404)
