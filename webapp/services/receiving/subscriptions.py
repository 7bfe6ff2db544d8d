"""Subscriptions to incoming mail (the Mendix SubscribeToIncomingEmail): which accounts are subscribed,
with which callbacks, and in which state. The subscriber process (``services.receiving.subscriber``)
does the listening; this module is what pages, the command line and ``webapp.connector`` change.

A subscription is a row of its own (one per account), so it survives restarts: the subscriber picks
it up without any start-up step, and subscribing twice changes the row instead of adding a listener.
New mail reaches ``on_new_email`` as the ``new_email`` event of the fetch that stored it (recorded in
the batch's transaction: exactly once per batch, whatever fetch stored it); a state change reaches
``on_state_changed(state, comment)`` as the ``idle_state`` event. Both also go to the
account's webhooks that take those events.
"""

from __future__ import annotations

import secrets as pysecrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount, Subscription
from webapp.models.base import utcnow
from webapp.models.subscription import GIVEN_UP, SubscriptionState
from webapp.services.account import accounts
from webapp.services.errors import Invalid
from webapp.services.events import callbacks, dispatch, webhooks

NEW_EMAIL = "new_email"
STATE_EVENT = "idle_state"


def check_can_subscribe(account: EmailAccount) -> None:
    """POP3 has no IDLE: only IMAP accounts can subscribe (Invalid otherwise)."""
    accounts.require_receiving(account)
    if account.incoming_protocol != "imap":
        raise Invalid(
            f"{account.name} receives with POP3, which cannot announce new mail: only IMAP accounts can "
            "subscribe to incoming email (fetch a POP3 account on a schedule instead)"
        )


@writes
def subscribe(
    account: EmailAccount, on_new_email: str | None = None, on_state_changed: str | None = None
) -> Subscription:
    """Subscribe ``account`` (or start it again, keeping the callbacks unless new ones are given): the
    subscriber takes it within seconds. Subscribing twice changes the one subscription, never adds one."""
    check_can_subscribe(account)
    for target in (on_new_email, on_state_changed):
        if target:
            callbacks.check_callback(account, target)
            if not webhooks.is_url(target):
                dispatch.resolve(target)  # a dotted path that cannot be imported is refused now, not at the first mail
    subscription = _row(account, for_update=True)
    if subscription is None:
        subscription = Subscription(account_id=account.id, generation=0)
        db.session.add(subscription)
    if on_new_email is not None:
        subscription.on_new_email = on_new_email or None
    if on_state_changed is not None:
        subscription.on_state_changed = on_state_changed or None
    restarting = not subscription.active or subscription.state in GIVEN_UP
    subscription.active = True
    if restarting:
        _next_generation(subscription, SubscriptionState.WAITING, "waiting for a subscriber process to take it")
    db.session.commit()
    return subscription


@writes
def settings_changed(account: EmailAccount) -> bool:
    """The account's settings changed (a new password, another server): a subscribed account's listener
    starts again with them — also after it had given up. False when the account is not subscribed."""
    subscription = _row(account, for_update=True)
    if subscription is None or not subscription.active:
        db.session.rollback()
        return False
    if not account.receives or account.incoming_protocol != "imap":
        subscription.active = False
        comment = (
            "unsubscribed: the account is send-only now"
            if not account.receives
            else "unsubscribed: the account receives with POP3 now, which cannot announce mail"
        )
        _next_generation(subscription, SubscriptionState.STOPPED, comment)
    else:
        _next_generation(subscription, SubscriptionState.WAITING, "the account's settings changed: connecting again")
    db.session.commit()
    return True


@writes
def unsubscribe(account: EmailAccount) -> bool:
    """Stop the account's subscription (the subscriber lets it go within seconds); False if there was none."""
    subscription = _row(account, for_update=True)
    if subscription is None or not subscription.active:
        db.session.rollback()
        return False
    subscription.active = False
    _next_generation(subscription, SubscriptionState.STOPPED, "unsubscribed")
    db.session.commit()
    return True


def _next_generation(subscription: Subscription, state: SubscriptionState, comment: str) -> None:
    """Start, restart or stop: a new generation (the listener of the old one lets go) in ``state``."""
    subscription.generation = (subscription.generation or 0) + 1
    subscription.state = state
    subscription.state_since = utcnow()
    subscription.state_comment = comment
    subscription.holder = None


def of(account: EmailAccount) -> Subscription | None:
    """The account's subscription (active or not), or None."""
    return _row(account)


def _row(account: EmailAccount, *, for_update: bool = False) -> Subscription | None:
    query = select(Subscription).where(Subscription.account_id == account.id)
    # Subscribe and unsubscribe read, then write the generation: the row lock makes two of them (or one
    # and a listener's state) take turns on PostgreSQL (SQLite's write transaction already does).
    return db.session.scalar(query.with_for_update() if for_update else query)


@dataclass(frozen=True)
class Listed:
    account: str
    address: str
    active: bool
    state: str
    since: datetime
    comment: str | None
    holder: str | None
    last_event_at: datetime | None
    last_error: str | None
    on_new_email: str | None
    on_state_changed: str | None

    def as_dict(self) -> dict[str, object]:
        """For ``--json``: times as ISO 8601."""
        return {
            "account": self.account,
            "address": self.address,
            "active": self.active,
            "state": self.state,
            "since": self.since.isoformat(),
            "comment": self.comment,
            "holder": self.holder,
            "last_event_at": self.last_event_at.isoformat() if self.last_event_at else None,
            "last_error": self.last_error,
            "on_new_email": webhooks.shown(self.on_new_email) if self.on_new_email else None,
            "on_state_changed": webhooks.shown(self.on_state_changed) if self.on_state_changed else None,
        }


def listing(accounts: list[EmailAccount] | None = None) -> list[Listed]:
    """Every subscription (of ``accounts`` only, when given), by account name."""
    query = select(Subscription, EmailAccount).join(EmailAccount, EmailAccount.id == Subscription.account_id)
    if accounts is not None:
        query = query.where(Subscription.account_id.in_([a.id for a in accounts]))
    rows = db.session.execute(query.order_by(EmailAccount.name)).all()
    return [
        Listed(
            account.name,
            account.address,
            sub.active,
            sub.state,
            sub.state_since,
            sub.state_comment,
            sub.holder,
            sub.last_event_at,
            sub.last_error,
            sub.on_new_email,
            sub.on_state_changed,
        )
        for sub, account in rows
    ]


def by_account_id() -> dict[int, Subscription]:
    """Every subscription by its account's id (the overview's state column)."""
    return {s.account_id: s for s in db.session.scalars(select(Subscription))}


def wanted() -> dict[int, tuple[int, int]]:
    """The subscriptions a subscriber should hold: id → (account id, generation); active, not given up."""
    query = select(Subscription.id, Subscription.account_id, Subscription.generation).where(
        Subscription.active.is_(True), Subscription.state.not_in([str(s) for s in GIVEN_UP])
    )
    return {row.id: (row.account_id, row.generation) for row in db.session.execute(query)}


@writes
def set_state(
    subscription_id: int, generation: int, state: SubscriptionState, comment: str, holder: str | None
) -> bool:
    """Record a state change of the subscription (if it is still the same generation: a stopped or
    restarted subscription is not overwritten by a listener that is on its way out) and tell
    ``on_state_changed`` and the webhooks. False when the subscription moved on meanwhile."""
    now = utcnow()
    values: dict[str, object] = {"state": state, "state_since": now, "state_comment": comment[:2000], "holder": holder}
    if state in (*GIVEN_UP, SubscriptionState.CONNECTIONTOSERVERLOST):
        values.update(last_error=comment[:2000], last_error_at=now)
    # One conditional UPDATE: a stop or restart committed meanwhile (a new generation, or inactive) wins,
    # whatever the order in which the two transactions reached the row.
    changed = db.session.execute(
        update(Subscription)
        .where(
            Subscription.id == subscription_id,
            Subscription.generation == generation,
            Subscription.active.is_(True),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    subscription = db.session.get(Subscription, subscription_id)
    if not changed or subscription is None:
        db.session.rollback()
        return False
    account = db.session.get(EmailAccount, subscription.account_id)
    if account is not None:
        delivery_id = f"{account.id}:{STATE_EVENT}:{pysecrets.token_hex(8)}"
        data = {"state": str(state), "comment": comment, "since": now.isoformat()}
        payload = dispatch.payload(account, STATE_EVENT, delivery_id, data)
        target = subscription.on_state_changed
        if target and not webhooks.is_url(target):
            dispatch.record(account, target, None, STATE_EVENT, delivery_id, payload)
        dispatch.queue_webhooks(account, STATE_EVENT, delivery_id, payload, target)
    db.session.commit()
    if account is not None:
        dispatch.deliver_due(account)
    return True


@writes
def note_new_mail(subscription_id: int, stored: int) -> None:
    """Remember when the subscription last handed over new mail (the pages' "last event")."""
    subscription = db.session.get(Subscription, subscription_id)
    if subscription is not None and stored:
        subscription.last_event_at = utcnow()
    db.session.commit()


def active_target(account: EmailAccount) -> tuple[bool, str | None]:
    """(subscribed, on_new_email) of the account: what a fetch's batch listener records ``new_email`` for."""
    row = db.session.execute(
        select(Subscription.active, Subscription.on_new_email).where(Subscription.account_id == account.id)
    ).first()
    if row is None or not row.active:
        return False, None
    return True, row.on_new_email
