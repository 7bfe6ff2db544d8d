"""Callbacks of a fetch (the Mendix microflows): on_fetch per stored batch, on_complete, on_error.

A callback is a dotted path to a Python callable (run in the worker) or a webhook URL (a JSON POST
signed with the webhook's secret). Every delivery has a stable id — the account, the batch and the
event — and is recorded once in the ``delivery`` table (a unique key), so it is delivered at least
once and recorded exactly once:

- a batch's ``fetch`` event is recorded *held* in the batch's transaction (an outbox), and released once
  the batch's bodies and attachments are stored (:func:`release_held`), in batch order, with complete
  messages;
- a dotted-path ``on_fetch`` then runs inside the transaction that records it as delivered, under a
  savepoint: what it writes commits together with "delivered", or not at all; if it raises, its changes
  are undone and it is retried later;
- webhooks become pending and are POSTed after that commit; failures are retried with backoff and logged.

An admin may also send a webhook a ``test`` event, or redeliver a delivery: one attempt at once, recorded
as a delivery of its own, never retried. Every error text written here shows a webhook URL as scheme and
host only (``webhook.redact``): paths and query strings often carry secrets.
"""

from __future__ import annotations

import importlib
import logging
import re
import secrets as pysecrets
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from webapp.adapters import webhook as webhook_http
from webapp.adapters.errors import AdapterError, PermanentError
from webapp.database import write_transaction, writes
from webapp.extensions import db
from webapp.models import Delivery, EmailAccount, EmailMessage, Webhook
from webapp.models.base import utcnow
from webapp.models.delivery import DELIVERED, EVENTS, FAILED, HELD, PENDING, TEST
from webapp.services.account import errorlog
from webapp.services.errors import Invalid, NotFound
from webapp.services.platform import secretstore
from webapp.services.reading import messages
from webapp.services.receiving import store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MIN_SECRET_LENGTH = 16
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*([:.][A-Za-z_][\w]*)$")


def is_url(target: str) -> bool:
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


def check_target(target: str) -> str:
    """A callback must be an http(s) URL or a dotted path (``package.module.function``)."""
    if is_url(target):
        return check_url(target)
    if not _DOTTED.match(target):
        raise Invalid(f"callback {target!r}: give a dotted path (package.module.function) or an http(s) URL")
    return target


def check_callback(account: EmailAccount, target: str) -> str:
    """Check a callback given to a fetch: a URL must be one of the account's webhooks (it has the secret)."""
    check_target(target)
    if is_url(target) and not any(h.url == target and h.active for h in webhooks(account)):
        raise Invalid(f"callback URL (on {shown(target)}) is not a webhook of this account; an admin adds it first")
    return target


def resolve(target: str) -> Callable[..., Any]:
    """Import the callable a dotted path names (``a.b.func`` or ``a.b:func``)."""
    module_name, _, attribute = target.replace(":", ".").rpartition(".")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise Invalid(f"callback {target!r} cannot be imported: {exc}") from None
    if not callable(function):
        raise Invalid(f"callback {target!r} is not callable")
    return function


def backoff(attempts: int) -> timedelta:
    """30 s, 1 min, 2 min, … capped at one hour."""
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


# --- webhooks configured by admins ---------------------------------------------------------------------


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


# --- on demand: a test event, a redelivery --------------------------------------------------------------


def send_test(hook: Webhook) -> Delivery:
    """POST a ``test`` event to the webhook at once (one attempt, recorded) and return its delivery."""
    account = db.session.get(EmailAccount, hook.account_id)
    if account is None:
        raise NotFound("the webhook's account was removed")
    delivery_id = f"{account.id}:{TEST}:{pysecrets.token_hex(8)}"
    payload = _payload(account, TEST, delivery_id, {"webhook": {"id": hook.id}, "sent_at": utcnow().isoformat()})
    with write_transaction():
        delivery = _record(account, hook.url, hook.id, TEST, delivery_id, payload)
        db.session.commit()
    _attempt(delivery, manual=True)
    return delivery


def redeliver(delivery: Delivery) -> Delivery:
    """POST a delivered or failed webhook delivery again, at once: a new delivery row, one attempt.

    The payload and its ``delivery_id`` (the X-EmailConnector-Delivery header) are the original's, so a
    receiver that deduplicates sees the same event again.
    """
    if delivery.webhook_id is None:
        raise Invalid("only webhook deliveries can be redelivered (a Python callback is retried by the schedule)")
    if delivery.status not in (DELIVERED, FAILED):
        raise Invalid("this delivery is still pending: it is retried automatically")
    account = db.session.get(EmailAccount, delivery.account_id)
    hook = db.session.get(Webhook, delivery.webhook_id)
    if account is None or hook is None:
        raise NotFound("the webhook was removed")
    with write_transaction():
        again = _record(
            account,
            hook.url,
            hook.id,
            delivery.event,
            f"redelivery:{delivery.id}:{pysecrets.token_hex(4)}",
            dict(delivery.payload),
        )
        db.session.commit()
    _attempt(again, manual=True)
    return again


# --- during a fetch ------------------------------------------------------------------------------------


class Listener:
    """The fetch's batch listener: records the batch's ``fetch`` event for ``on_fetch`` and the account's
    webhooks, held until the batch's bodies and attachments are stored (:func:`release_held`)."""

    def __init__(self, on_fetch: str | None = None) -> None:
        self.on_fetch = on_fetch

    def in_transaction(self, account: EmailAccount, ids: Sequence[int], key: str) -> None:
        delivery_id = f"{account.id}:{key}:fetch"
        payload = _payload(account, "fetch", delivery_id, {"message_ids": sorted(ids)})
        if self.on_fetch and not is_url(self.on_fetch) and not _exists(delivery_id, self.on_fetch):
            _record(account, self.on_fetch, None, "fetch", delivery_id, payload, status=HELD)
        _queue_webhooks(account, "fetch", delivery_id, payload, self.on_fetch, status=HELD)


def release_held(account: EmailAccount) -> int:
    """Deliver the held ``fetch`` events whose messages are complete (bodies, attachments, search), in batch
    order, stopping at the first batch still being parsed; return how many were released.

    A dotted-path callback runs inside the transaction that records its delivery, under a savepoint: what
    it writes commits together with "delivered", or not at all (then it is retried later); webhooks become
    pending and are POSTed after the commit.
    """
    released = 0
    while True:
        held = db.session.scalars(
            select(Delivery)
            .where(Delivery.account_id == account.id, Delivery.status == HELD)
            .order_by(Delivery.id)
            .limit(1)
        ).first()
        if held is None or not _release(held.id):
            break
        released += 1
    deliver_due(account)
    return released


def release_all_held() -> int:
    """:func:`release_held` for every account with held events (the schedule's sweep)."""
    ids = db.session.scalars(select(Delivery.account_id).where(Delivery.status == HELD).distinct()).all()
    return sum(
        release_held(account) for account in db.session.scalars(select(EmailAccount).where(EmailAccount.id.in_(ids)))
    )


@writes
def _release(delivery_id: int) -> bool:
    delivery = db.session.get(Delivery, delivery_id)
    if delivery is None or delivery.status != HELD:
        db.session.rollback()
        return delivery is not None  # released by someone else meanwhile: go on
    ids = [int(i) for i in delivery.payload.get("message_ids", [])]
    batch = store.complete_batch(ids)
    if batch is None:
        db.session.rollback()
        return False  # its bodies are not all parsed yet
    payload = {k: v for k, v in delivery.payload.items() if k != "message_ids"}
    payload["messages"] = [messages.describe(m, bodies=True) for m in batch]
    delivery.payload = payload
    delivery.next_attempt_at = utcnow()
    if delivery.webhook_id is not None:
        delivery.status = PENDING
    else:
        _run_in_transaction(delivery, batch)
    db.session.commit()
    return True


def completed(account: EmailAccount, summary: dict[str, int], on_complete: str | None) -> None:
    _event(account, "complete", {"summary": summary}, on_complete)


def failed(account: EmailAccount, error: str, on_error: str | None) -> None:
    _event(account, "error", {"error": error}, on_error)


@writes
def _event(account: EmailAccount, event: str, data: dict[str, Any], target: str | None) -> None:
    delivery_id = f"{account.id}:{event}:{pysecrets.token_hex(8)}"
    payload = _payload(account, event, delivery_id, data)
    if target and not is_url(target):
        _record(account, target, None, event, delivery_id, payload)
    _queue_webhooks(account, event, delivery_id, payload, target)
    db.session.commit()
    deliver_due(account)


def _payload(account: EmailAccount, event: str, delivery_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "event": event,
        "account": {"id": account.id, "name": account.name, "address": account.address},
        **data,
    }


def _run_in_transaction(delivery: Delivery, batch: Sequence[EmailMessage]) -> None:
    """Run a dotted-path ``on_fetch`` under a savepoint of the caller's transaction and record the outcome."""
    delivery.attempts = 1
    try:
        with db.session.begin_nested():
            resolve(delivery.target)(list(batch))
    except Exception as exc:  # noqa: BLE001 - a failing callback must not cost a message
        delivery.status = PENDING
        delivery.last_error = webhook_http.redact_text(f"{type(exc).__name__}: {exc}")[:2000]
        delivery.next_attempt_at = utcnow() + backoff(1)
        log.warning("account %s: on_fetch %s failed: %s", delivery.account_id, delivery.target, delivery.last_error)
        return
    delivery.status = DELIVERED
    delivery.delivered_at = utcnow()


def _queue_webhooks(
    account: EmailAccount,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
    target: str | None,
    status: str = PENDING,
) -> None:
    for hook in webhooks(account):
        wanted = hook.active and (event in hook.events or hook.url == target)
        if wanted and not _exists(delivery_id, hook.url):
            _record(account, hook.url, hook.id, event, delivery_id, payload, status=status)


def _exists(delivery_id: str, target: str) -> bool:
    return (
        db.session.scalar(select(Delivery.id).where(Delivery.delivery_id == delivery_id, Delivery.target == target))
        is not None
    )


def _record(
    account: EmailAccount,
    target: str,
    webhook_id: int | None,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
    status: str = PENDING,
) -> Delivery:
    delivery = Delivery(
        delivery_id=delivery_id,
        target=target,
        account_id=account.id,
        webhook_id=webhook_id,
        event=event,
        payload=payload,
        status=status,
        next_attempt_at=utcnow(),
    )
    db.session.add(delivery)
    db.session.flush()
    return delivery


def deliver_due(account: EmailAccount | None = None, limit: int = 100) -> int:
    """Deliver pending deliveries whose time has come; return how many were delivered."""
    query = select(Delivery).where(Delivery.status == PENDING, Delivery.next_attempt_at <= utcnow())
    if account is not None:
        query = query.where(Delivery.account_id == account.id)
    delivered = 0
    for delivery in list(db.session.scalars(query.order_by(Delivery.id).limit(limit))):
        delivered += _attempt(delivery)
    return delivered


def _attempt(delivery: Delivery, manual: bool = False) -> int:
    """One attempt; a ``manual`` one (test, redelivery) is not retried and not written to the Error logs.

    No transaction stays open while a webhook is POSTed (on SQLite that would hold the write lock for as
    long as the receiver takes); a dotted-path callback runs inside the write transaction that records it,
    since it may write with the session too.
    """
    delivery_id, account_id, webhook_id = delivery.id, delivery.account_id, delivery.webhook_id
    if db.session.get(EmailAccount, account_id) is None:
        return 0
    started = time.monotonic()
    if webhook_id is None:
        with write_transaction():
            try:
                _call_later(delivery)
            except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
                return _record_outcome(delivery_id, started, exc, manual)
            return _record_outcome(delivery_id, started, None, manual)
    failure: Exception | None = None
    try:
        hook = db.session.get(Webhook, webhook_id)
        if hook is None:
            raise PermanentError("the webhook was removed")
        url, secret = hook.url, secretstore.decrypt(hook.secret_encrypted)
        payload, event_id = delivery.payload, delivery.event_id
        db.session.rollback()  # nothing to keep: the outcome is recorded in a transaction of its own
        webhook_http.post(url, secret, payload, event_id, allow_private=allow_private())
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
        failure = exc
    return _record_outcome(delivery_id, started, failure, manual)


@writes
def _record_outcome(delivery_id: int, started: float, exc: Exception | None, manual: bool) -> int:
    delivery = db.session.get(Delivery, delivery_id)
    account = db.session.get(EmailAccount, delivery.account_id) if delivery is not None else None
    if delivery is None or account is None:
        db.session.rollback()
        return 0  # removed meanwhile, with its account or webhook
    delivery.attempts += 1
    delivery.duration_ms = _elapsed_ms(started)
    if exc is None:
        delivery.status = DELIVERED
        delivery.delivered_at = utcnow()
        db.session.commit()
        return 1
    permanent = manual or isinstance(exc, PermanentError) or delivery.attempts >= MAX_ATTEMPTS
    error = webhook_http.redact_text(str(exc) if isinstance(exc, AdapterError) else f"{type(exc).__name__}: {exc}")
    delivery.last_error = error[:2000]
    if permanent:
        delivery.status = FAILED
        if manual:
            db.session.commit()
        else:
            message = f"{delivery.event} delivery to {shown(delivery.target)} failed: {error}"
            errorlog.record(account, "callback", message, delivery.delivery_id)
    else:
        delivery.next_attempt_at = utcnow() + backoff(delivery.attempts)
        db.session.commit()
    return 0


def _elapsed_ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)


def _call_later(delivery: Delivery) -> None:
    """A dotted-path callback retried outside its batch: it gets the stored messages (or the summary)."""
    function = resolve(delivery.target)
    if delivery.event == "fetch":
        ids = [m["id"] for m in delivery.payload.get("messages", [])]
        batch = list(db.session.scalars(select(EmailMessage).where(EmailMessage.id.in_(ids)).order_by(EmailMessage.id)))
        function(batch)
    elif delivery.event == "complete":
        function(delivery.payload.get("summary", {}))
    else:
        function(delivery.payload.get("error", ""))
