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

import logging
import secrets as pysecrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from webapp.adapters import webhook as webhook_http
from webapp.database import writes
from webapp.extensions import db
from webapp.models import Delivery, EmailAccount, EmailMessage
from webapp.models.base import utcnow
from webapp.models.delivery import DELIVERED, HELD, PENDING
from webapp.services.errors import Invalid
from webapp.services.events import dispatch, webhooks
from webapp.services.reading import messages
from webapp.services.receiving import store

log = logging.getLogger(__name__)

MIN_SECRET_LENGTH = 16
NEW_EMAIL = "new_email"  # a subscribed account's new mail (services.receiving.subscriptions)


def check_callback(account: EmailAccount, target: str) -> str:
    """Check a callback given to a fetch: a URL must be one of the account's webhooks (it has the secret)."""
    webhooks.check_target(target)
    if webhooks.is_url(target) and not any(h.url == target and h.active for h in webhooks.webhooks(account)):
        raise Invalid(
            f"callback URL (on {webhooks.shown(target)}) is not a webhook of this account; an admin adds it first"
        )
    return target


class Listener:
    """The fetch's batch listener: records the batch's ``fetch`` event for ``on_fetch`` and the account's
    webhooks, held until the batch's bodies and attachments are stored (:func:`release_held`)."""

    def __init__(
        self, on_fetch: str | None = None, *, subscribed: bool = False, on_new_email: str | None = None
    ) -> None:
        self.on_fetch = on_fetch
        # A subscribed account's batches are also its subscription's ``new_email`` events, whatever fetch
        # stored them (the subscriber's, a page's, the schedule's): each new message is handed over once.
        self.subscribed = subscribed
        self.on_new_email = on_new_email

    def in_transaction(self, account: EmailAccount, ids: Sequence[int], key: str) -> None:
        """Record the batch's ``fetch`` event (and, for a subscribed account, its ``new_email`` event), held,
        for the dotted-path callbacks and the account's webhooks."""
        events = [("fetch", self.on_fetch)] + ([(NEW_EMAIL, self.on_new_email)] if self.subscribed else [])
        for event, target in events:
            delivery_id = f"{account.id}:{key}:{event}"
            payload = dispatch.payload(account, event, delivery_id, {"message_ids": sorted(ids)})
            if target and not webhooks.is_url(target) and not dispatch.exists(delivery_id, target):
                dispatch.record(account, target, None, event, delivery_id, payload, status=HELD)
            dispatch.queue_webhooks(account, event, delivery_id, payload, target, status=HELD)


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
    dispatch.deliver_due(account)
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
    """Record the fetch's ``complete`` event (its summary) for ``on_complete`` and the webhooks; commit."""
    _event(account, "complete", {"summary": summary}, on_complete)


def failed(account: EmailAccount, error: str, on_error: str | None) -> None:
    """Record the fetch's ``error`` event (its reason) for ``on_error`` and the webhooks; commit."""
    _event(account, "error", {"error": error}, on_error)


@writes
def _event(account: EmailAccount, event: str, data: dict[str, Any], target: str | None) -> None:
    delivery_id = f"{account.id}:{event}:{pysecrets.token_hex(8)}"
    payload = dispatch.payload(account, event, delivery_id, data)
    if target and not webhooks.is_url(target):
        dispatch.record(account, target, None, event, delivery_id, payload)
    dispatch.queue_webhooks(account, event, delivery_id, payload, target)
    db.session.commit()
    dispatch.deliver_due(account)


def _run_in_transaction(delivery: Delivery, batch: Sequence[EmailMessage]) -> None:
    """Run a dotted-path ``on_fetch`` under a savepoint of the caller's transaction and record the outcome."""
    delivery.attempts = 1
    try:
        with db.session.begin_nested():
            dispatch.resolve(delivery.target)(list(batch))
    except Exception as exc:  # noqa: BLE001 - a failing callback must not cost a message
        delivery.status = PENDING
        delivery.last_error = webhook_http.redact_text(f"{type(exc).__name__}: {exc}")[:2000]
        delivery.next_attempt_at = utcnow() + dispatch.backoff(1)
        name = "on_new_email" if delivery.event == NEW_EMAIL else "on_fetch"
        log.warning("account %s: %s %s failed: %s", delivery.account_id, name, delivery.target, delivery.last_error)
        return
    delivery.status = DELIVERED
    delivery.delivered_at = utcnow()
