"""Found by the attack review of subscriptions: a listener's state write racing an unsubscribe, event names
longer than the delivery log's column, and announced mail forgotten while another fetch held the lock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text

from tests.servers.dovecot import Dovecot
from tests.servers.messages import make as make_message
from tests.services.test_subscriber import FAST, HANDED, Running, _handed, _state, _stored, wait_for
from webapp.extensions import db
from webapp.models import Delivery, FetchRun, Subscription
from webapp.models.delivery import EVENTS, TEST
from webapp.models.fetchrun import RunStatus
from webapp.models.subscription import SubscriptionState
from webapp.services.receiving import fetchlock, subscriptions
from webapp.services.receiving import subscriber as subscriber_service

STATES: list[tuple[str, str]] = []


def _try_hold(stack: ExitStack, account_id: int) -> bool:
    try:
        stack.enter_context(fetchlock.hold(account_id))
    except fetchlock.AlreadyRunning:
        return False
    return True


def record_state(state: str, comment: str) -> None:
    STATES.append((state, comment))


def test_every_event_name_fits_the_delivery_log() -> None:
    length = Delivery.__table__.c.event.type.length  # type: ignore[attr-defined]
    assert all(len(event) <= length for event in (*EVENTS, TEST)), (EVENTS, length)


def test_a_state_change_reaches_on_state_changed(make_account: Callable[..., Any]) -> None:
    STATES.clear()
    account = make_account()
    subscription = subscriptions.subscribe(account, None, f"{__name__}.record_state")
    assert subscriptions.set_state(
        subscription.id, subscription.generation, SubscriptionState.CONNECTED, "listening", "h:1"
    )
    db.session.rollback()
    assert db.session.get(Subscription, subscription.id).state == SubscriptionState.CONNECTED  # type: ignore[union-attr]
    assert STATES == [("CONNECTED", "listening")]


def test_a_listener_state_write_does_not_overwrite_an_unsubscribe(app: Flask, make_account: Callable[..., Any]) -> None:
    """The unsubscribe holds the row (PostgreSQL row lock) while the listener writes its state: once the
    unsubscribe commits, the listener's write finds a new generation and changes nothing."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("the interleaving needs a row lock (SQLite's write transactions take turns anyway)")
    account = make_account()
    subscription = subscriptions.subscribe(account)
    subscription_id, generation = subscription.id, subscription.generation
    db.session.commit()
    blocker = db.engine.connect()
    transaction = blocker.begin()
    blocker.execute(
        text("UPDATE subscription SET active = false, generation = generation + 1, state = 'STOPPED' WHERE id = :id"),
        {"id": subscription_id},
    )
    result: list[bool] = []

    def listener_writes_state() -> None:
        with app.app_context():
            result.append(
                subscriptions.set_state(subscription_id, generation, SubscriptionState.CONNECTED, "listening", "h:1")
            )
            db.session.remove()

    thread = threading.Thread(target=listener_writes_state)
    thread.start()
    try:
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )

        def listener_waits() -> bool:
            # A new transaction each time: pg_stat_activity is a snapshot taken once per transaction.
            with db.engine.connect() as connection:
                return bool(connection.execute(waiting).scalar())

        wait_for(listener_waits, 10, "the listener waiting for the row lock")
    finally:
        transaction.commit()
        blocker.close()
    thread.join(timeout=15)
    db.session.rollback()
    row = db.session.get(Subscription, subscription_id)
    assert row is not None and (row.active, row.state) == (False, SubscriptionState.STOPPED)
    assert result == [False]


def test_announced_mail_is_fetched_once_another_fetch_lets_go(
    make_app: Callable[..., Flask],
    make_account: Callable[..., Any],
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Mail announced while another fetch (a page, the schedule) holds the account's fetch lock is owed,
    and fetched as soon as the lock is free — not left until some other mail arrives."""
    monkeypatch.setattr(subscriber_service, "BUSY_PAUSE_SECONDS", 0.2)
    HANDED.clear()  # the records of test_subscriber's callbacks, which this test uses too
    app = make_app(**FAST)
    account = make_account()
    subscriptions.subscribe(account, "tests.services.test_subscriber.record_new_email")
    running = Running(app)
    with running:
        wait_for(lambda: _state(account.id) == SubscriptionState.CONNECTED, what="CONNECTED")

        def first_fill_done() -> bool:
            db.session.rollback()
            query = select(FetchRun.status).where(FetchRun.account_id == account.id)
            return RunStatus.FINISHED in db.session.scalars(query).all()

        wait_for(first_fill_done, what="the first fill ran")
        runs_before = len(db.session.scalars(select(FetchRun.id)).all())
        with ExitStack() as held:
            # A long fetch of the account, started before the mail came (once the listener's own is done).
            wait_for(lambda: _try_hold(held, account.id), what="the account's fetch lock")
            dovecot.deliver("alice", make_message(0, "text"))
            rounds = running.subscriber.rounds + 10  # the listener tries, finds the lock held, and waits
            wait_for(lambda: running.subscriber.rounds >= rounds, what="ten rounds of checks")
        wait_for(lambda: _stored(account.id) == 1, timeout=10, what="the announced message stored")
    assert len(_handed()) == 1
    db.session.rollback()
    statuses = db.session.scalars(select(FetchRun.status).order_by(FetchRun.id)).all()[runs_before:]
    assert RunStatus.FAILED not in statuses  # waiting for the other fetch is not a failed run
