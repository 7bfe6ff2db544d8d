"""Delivering callbacks: a delivery is recorded once (a unique key per event and target) and attempted until
delivered, retried with backoff, or given up and written to the Error logs; no transaction stays open while
a webhook is POSTed. Admins may send a webhook a test event or redeliver a delivery (one attempt at once)."""

from __future__ import annotations

import importlib
import logging
import secrets as pysecrets
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from webapp.adapters import webhook as webhook_http
from webapp.adapters.errors import AdapterError, PermanentError
from webapp.database import write_transaction, writes
from webapp.extensions import db
from webapp.models import Delivery, EmailAccount, EmailMessage, Webhook
from webapp.models.base import utcnow
from webapp.models.delivery import DELIVERED, FAILED, PENDING, TEST
from webapp.services.account import errorlog
from webapp.services.errors import Invalid, NotFound
from webapp.services.events import webhooks
from webapp.services.platform import secretstore

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MIN_SECRET_LENGTH = 16


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


def send_test(hook: Webhook) -> Delivery:
    """POST a ``test`` event to the webhook at once (one attempt, recorded) and return its delivery."""
    account = db.session.get(EmailAccount, hook.account_id)
    if account is None:
        raise NotFound("the webhook's account was removed")
    delivery_id = f"{account.id}:{TEST}:{pysecrets.token_hex(8)}"
    body = payload(account, TEST, delivery_id, {"webhook": {"id": hook.id}, "sent_at": utcnow().isoformat()})
    with write_transaction():
        delivery = record(account, hook.url, hook.id, TEST, delivery_id, body)
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
        again = record(
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


def send_test_to(account: EmailAccount, webhook_id: int) -> Delivery:
    """The Test button: :func:`send_test` to ``account``'s webhook ``webhook_id`` (NotFound otherwise)."""
    return send_test(webhooks.get_webhook(webhook_id, account))


def redeliver_of(account: EmailAccount, webhook_id: int, delivery_id: int) -> Delivery:
    """The Redeliver button: :func:`redeliver` a delivery of ``account``'s webhook ``webhook_id``.

    NotFound when the account has no such webhook or the delivery is not that webhook's.
    """
    hook = webhooks.get_webhook(webhook_id, account)
    original = webhooks.get_delivery(delivery_id, account)
    if original.webhook_id != hook.id:
        raise NotFound(f"no delivery {delivery_id} of webhook {webhook_id}")
    return redeliver(original)


def payload(account: EmailAccount, event: str, delivery_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body of an event: its ``delivery_id``, name and account, plus ``data``."""
    return {
        "delivery_id": delivery_id,
        "event": event,
        "account": {"id": account.id, "name": account.name, "address": account.address},
        **data,
    }


def queue_webhooks(
    account: EmailAccount,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
    target: str | None,
    status: str = PENDING,
) -> None:
    """Record the event for each active webhook that subscribes to it (or is ``target``), unless recorded."""
    for hook in webhooks.webhooks(account):
        wanted = hook.active and (event in hook.events or hook.url == target)
        if wanted and not exists(delivery_id, hook.url):
            record(account, hook.url, hook.id, event, delivery_id, payload, status=status)


def exists(delivery_id: str, target: str) -> bool:
    """Is a delivery of ``delivery_id`` to ``target`` recorded already (a rerun records nothing twice)?"""
    return (
        db.session.scalar(select(Delivery.id).where(Delivery.delivery_id == delivery_id, Delivery.target == target))
        is not None
    )


def record(
    account: EmailAccount,
    target: str,
    webhook_id: int | None,
    event: str,
    delivery_id: str,
    payload: dict[str, Any],
    status: str = PENDING,
) -> Delivery:
    """Add a delivery, due at once, to the session and flush it (for its id); the caller commits."""
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
        webhook_http.post(url, secret, payload, event_id, allow_private=webhooks.allow_private())
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
            message = f"{delivery.event} delivery to {webhooks.shown(delivery.target)} failed: {error}"
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
    if delivery.event in ("fetch", "new_email"):
        ids = [m["id"] for m in delivery.payload.get("messages", [])]
        batch = list(db.session.scalars(select(EmailMessage).where(EmailMessage.id.in_(ids)).order_by(EmailMessage.id)))
        function(batch)
    elif delivery.event == "complete":
        function(delivery.payload.get("summary", {}))
    elif delivery.event == "idle_state":
        function(delivery.payload.get("state", ""), delivery.payload.get("comment", ""))
    else:
        function(delivery.payload.get("error", ""))
