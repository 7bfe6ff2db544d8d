"""The periodic schedule: fetch the accounts that ask for it ("fetch every N minutes"), hand due queued
mail to the workers (after sweeping expired send leases) and retry due webhook deliveries.
``email-connector scheduler`` runs it every minute (``make run`` starts it); a system cron running
``email-connector fetch-due`` every minute does the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import EmailAccount
from webapp.models.fetchrun import RunTrigger
from webapp.services.errors import ConnectorError
from webapp.services.events import callbacks, dispatch
from webapp.services.outgoing import delivery, outbox
from webapp.services.platform import blobs
from webapp.services.platform.redisconn import coordination
from webapp.services.receiving import fetchjobs


@dataclass
class Tick:
    queued: list[str] = field(default_factory=list)  # account names
    delivered: int = 0
    released: int = 0  # fetch events whose batches were complete by now (after a crash, say)
    collected: int = 0  # unused blobs removed
    sending: list[str] = field(default_factory=list)  # accounts whose due queued mail went to a worker
    requeued: int = 0  # queued messages of a stopped worker put back
    possibly_sent: int = 0  # ... and those it may have sent, marked
    errors: list[str] = field(default_factory=list)


GC_EVERY_SECONDS = 3600


def _last_key(account_id: int) -> str:
    return f"schedule:last-fetch:{account_id}"


def next_fetch_at(account: EmailAccount, now: float | None = None) -> datetime | None:
    """When the schedule next fetches the account (None: it is not fetched on a schedule)."""
    if account.fetch_every_minutes <= 0:
        return None
    now = time.time() if now is None else now
    last = coordination().get(_last_key(account.id))
    due = now if last is None else max(now, float(last) + account.fetch_every_minutes * 60)
    return datetime.fromtimestamp(due, UTC)


def run_due(now: float | None = None) -> Tick:
    """Queue a fetch of every account whose interval has passed; deliver due callbacks."""
    now = time.time() if now is None else now
    tick = Tick()
    store = coordination()
    query = select(EmailAccount).where(EmailAccount.fetch_every_minutes > 0).order_by(EmailAccount.id)
    for account in db.session.scalars(query):
        last = store.get(_last_key(account.id))
        if last is not None and now - float(last) < account.fetch_every_minutes * 60 - 5:
            continue
        try:
            fetchjobs.enqueue(account, trigger=RunTrigger.SCHEDULE)
        except ConnectorError as exc:
            tick.errors.append(f"{account.name}: {exc}")
            continue
        store.put(_last_key(account.id), str(now), account.fetch_every_minutes * 60 * 2)
        tick.queued.append(account.name)
    tick.requeued, tick.possibly_sent = delivery.sweep()
    for account_id in delivery.due_accounts():
        due = db.session.get(EmailAccount, account_id)
        if due is not None:
            outbox.nudge(due)
            tick.sending.append(due.name)
    tick.released = callbacks.release_all_held()
    tick.delivered = dispatch.deliver_due()
    # Once an hour across every scheduler: remove the bytes nothing names any more.
    if store.put("schedule:blob-gc", str(now), GC_EVERY_SECONDS, only_if_new=True):
        tick.collected = blobs.collect_garbage().count
    return tick
