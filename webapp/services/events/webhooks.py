"""Webhooks an admin configures per account: adding (the URL checked, the secret made and stored encrypted),
listing, removing, and their delivery logs. Error texts show a webhook URL as scheme and host only."""

from __future__ import annotations

import logging
import re
import secrets as pysecrets
from collections.abc import Sequence

from flask import current_app
from sqlalchemy import select

from webapp.adapters import webhook as webhook_http
from webapp.adapters.errors import PermanentError
from webapp.database import writes
from webapp.extensions import db
from webapp.models import Delivery, EmailAccount, Webhook
from webapp.models.delivery import EVENTS
from webapp.services.errors import Invalid, NotFound
from webapp.services.platform import secretstore

log = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 16
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*([:.][A-Za-z_][\w]*)$")


def is_url(target: str) -> bool:
    """Is the callback ``target`` a webhook URL (else a dotted path to a Python callable)?"""
    return "://" in target


def shown(target: str) -> str:
    """A callback target as messages may show it: a URL as scheme and host, a dotted path as it is."""
    return webhook_http.redact(target) if is_url(target) else target


def allow_private() -> bool:
    """The WEBHOOK_ALLOW_PRIVATE setting (the environment gives a string: "false", "0", "no", "off")."""
    value = current_app.config.get("WEBHOOK_ALLOW_PRIVATE", True)
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def check_url(url: str) -> str:
    """A webhook URL must be http(s) and may not point where webhooks must not go."""
    try:
        webhook_http.check_url(url, allow_private())
    except PermanentError as exc:
        raise Invalid(f"URL: {exc}") from None
    return url


@writes
def add_webhook(
    account: EmailAccount, url: str, events: Sequence[str] = EVENTS, secret: str | None = None
) -> tuple[Webhook, str]:
    """Add a webhook; return it and its secret (shown once to the admin; stored encrypted).

    Without ``secret`` a random one is made; a given one (moving a receiver) needs 16+ characters.
    """
    url = url.strip()
    check_url(url)
    unknown = set(events) - set(EVENTS)
    if unknown or not events:
        raise Invalid(f"events: some of {', '.join(EVENTS)}")
    if secret is not None and (len(secret) < MIN_SECRET_LENGTH or secret != secret.strip()):
        raise Invalid(f"secret: at least {MIN_SECRET_LENGTH} characters, without leading or trailing spaces")
    secret = secret or pysecrets.token_urlsafe(32)
    hook = Webhook(
        account_id=account.id,
        url=url,
        secret_encrypted=secretstore.encrypt(secret),
        events=[e for e in EVENTS if e in events],
    )
    db.session.add(hook)
    db.session.commit()
    return hook, secret


def webhooks(account: EmailAccount) -> list[Webhook]:
    """Return the account's webhooks, oldest first."""
    return list(db.session.scalars(select(Webhook).where(Webhook.account_id == account.id).order_by(Webhook.id)))


def all_webhooks() -> list[Webhook]:
    """Return every account's webhooks, by account then age."""
    return list(db.session.scalars(select(Webhook).order_by(Webhook.account_id, Webhook.id)))


def get_webhook(webhook_id: int, account: EmailAccount | None = None) -> Webhook:
    """Return the webhook (of ``account``, when given) or raise NotFound."""
    hook = db.session.get(Webhook, webhook_id) if 0 < webhook_id < 2**63 else None
    if hook is None or (account is not None and hook.account_id != account.id):
        raise NotFound(f"no webhook {webhook_id}" + (" on this account" if account is not None else ""))
    return hook


@writes
def remove_webhook(account: EmailAccount | None, webhook_id: int) -> None:
    """Remove a webhook and its deliveries."""
    db.session.delete(get_webhook(webhook_id, account))
    db.session.commit()


def deliveries(account: EmailAccount, limit: int = 100) -> list[Delivery]:
    """Return the account's newest deliveries first (webhooks and dotted-path callbacks)."""
    query = select(Delivery).where(Delivery.account_id == account.id).order_by(Delivery.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def webhook_deliveries(hook: Webhook, limit: int = 100) -> list[Delivery]:
    """Return the webhook's newest deliveries first: its delivery log."""
    query = select(Delivery).where(Delivery.webhook_id == hook.id).order_by(Delivery.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def callback_deliveries(account: EmailAccount, limit: int = 100) -> list[Delivery]:
    """Return the newest deliveries to dotted-path callbacks (not webhooks) of the account."""
    query = (
        select(Delivery)
        .where(Delivery.account_id == account.id, Delivery.webhook_id.is_(None))
        .order_by(Delivery.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def get_delivery(delivery_id: int, account: EmailAccount | None = None) -> Delivery:
    """Return the delivery (of ``account``, when given) or raise NotFound."""
    delivery = db.session.get(Delivery, delivery_id) if 0 < delivery_id < 2**63 else None
    if delivery is None or (account is not None and delivery.account_id != account.id):
        raise NotFound(f"no delivery {delivery_id}" + (" on this account" if account is not None else ""))
    return delivery


def check_target(target: str) -> str:
    """A callback must be an http(s) URL or a dotted path (``package.module.function``)."""
    if is_url(target):
        return check_url(target)
    if not _DOTTED.match(target):
        raise Invalid(f"callback {target!r}: give a dotted path (package.module.function) or an http(s) URL")
    return target
