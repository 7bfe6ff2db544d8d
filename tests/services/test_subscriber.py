"""Subscriptions to incoming mail against the test kit's Dovecot, with the fault proxy in front of it.

A Subscriber runs in a thread of the test process (as ``email-connector subscriber`` runs it); its
callbacks are the dotted paths below, which record what they were handed. Waiting is bounded polling
for a state of the database or of those records, never a sleep standing in for synchronisation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from tests.servers.messages import make as make_message
from webapp.extensions import db
from webapp.models import EmailMessage, Subscription
from webapp.models.subscription import SubscriptionState
from webapp.services.errors import Invalid
from webapp.services.receiving import subscriber as subscriber_service
from webapp.services.receiving import subscriptions

HANDED: list[int] = []  # message ids handed to on_new_email, in order
STATES: list[tuple[str, str]] = []
_LOCK = threading.Lock()

FAST = {
    "SUBSCRIPTION_IDLE_SECONDS": 2,
    "SUBSCRIPTION_POLL_SECONDS": 1,
    "SUBSCRIPTION_RETRIES": 4,
    "SUBSCRIPTION_BACKOFF_SECONDS": 0.2,
    "SUBSCRIPTION_BACKOFF_MAX_SECONDS": 1.0,
    "SUBSCRIPTION_LEASE_SECONDS": 3,
    "SUBSCRIPTION_CHECK_SECONDS": 0.3,
}


def record_new_email(messages: list[Any]) -> None:
    with _LOCK:
        HANDED.extend(m.id for m in messages)


def record_state(state: str, comment: str) -> None:
    with _LOCK:
        STATES.append((state, comment))


@pytest.fixture(autouse=True)
def _clean_records() -> Iterator[None]:
    HANDED.clear()
    STATES.clear()
    yield


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    """Poll ``condition`` (bounded) until it returns something true; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    import sys
    import traceback

    stacks = "\n".join(
        f"--- {t.name}\n" + "".join(traceback.format_stack(sys._current_frames()[t.ident]))
        for t in threading.enumerate()
        if t.name.startswith("subscription-") and t.ident in sys._current_frames()
    )
    raise AssertionError(f"not within {timeout} s: {what}\nstates: {STATES}\nruns: {_runs()}\n{stacks}")


class Running:
    """A Subscriber in a thread of its own, on an app of its own (as another process would be)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.stop = threading.Event()
        self.subscriber = subscriber_service.Subscriber(app)
        self.thread = threading.Thread(target=self.subscriber.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture
def subscriber_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(**FAST)


def _stored(account_id: int) -> int:
    db.session.rollback()
    query = select(func.count()).select_from(EmailMessage).where(EmailMessage.account_id == account_id)
    return db.session.scalar(query) or 0


def _state(account_id: int) -> str | None:
    db.session.rollback()
    return db.session.scalar(select(Subscription.state).where(Subscription.account_id == account_id))


def _runs() -> list[tuple[str, int, str | None]]:
    from webapp.models import FetchRun

    db.session.rollback()
    return [(r.status, r.stored, r.error) for r in db.session.scalars(select(FetchRun).order_by(FetchRun.id))]


def _handed() -> list[int]:
    with _LOCK:
        return list(HANDED)


def test_new_mail_is_stored_and_handed_over_once(
    make_account: Callable[..., Any], dovecot: Dovecot, subscriber_app: Flask
) -> None:
    account = make_account()
    dovecot.deliver("alice", make_message(0, "text"))  # there before subscribing: the first fill
    subscriptions.subscribe(account, f"{__name__}.record_new_email", f"{__name__}.record_state")
    with Running(subscriber_app):
        wait_for(lambda: _state(account.id) == SubscriptionState.CONNECTED, what="CONNECTED")
        wait_for(lambda: len(_handed()) == 1, what="the first fill handed over")
        for index in range(1, 4):
            dovecot.deliver("alice", make_message(index, "text"))
            wait_for(lambda i=index: len(_handed()) == i + 1, timeout=5, what=f"message {index} within 5 s")
    assert _stored(account.id) == 4
    assert len(set(_handed())) == 4
    assert STATES[0][0] == "CONNECTED"


def test_subscribing_twice_keeps_one_subscription(make_account: Callable[..., Any]) -> None:
    account = make_account()
    first = subscriptions.subscribe(account, f"{__name__}.record_new_email")
    second = subscriptions.subscribe(account)
    assert first.id == second.id and second.on_new_email == f"{__name__}.record_new_email"
    assert db.session.scalar(select(func.count()).select_from(Subscription)) == 1


def test_pop3_accounts_cannot_subscribe(make_account: Callable[..., Any], dovecot: Dovecot) -> None:
    account = make_account(incoming_protocol="pop3", incoming_port=dovecot.pop3s_port)
    with pytest.raises(Invalid, match="POP3"):
        subscriptions.subscribe(account)


def test_wrong_credentials_fail_the_subscription(make_account: Callable[..., Any], subscriber_app: Flask) -> None:
    account = make_account(password="wrong password")
    subscriptions.subscribe(account, None, f"{__name__}.record_state")
    with Running(subscriber_app):
        wait_for(lambda: _state(account.id) == SubscriptionState.SUBSCRIPTIONFAILED, what="SUBSCRIPTIONFAILED")
    assert STATES[-1][0] == "SUBSCRIPTIONFAILED" and "authentication failed" in STATES[-1][1]


def test_a_dropped_connection_reconnects_and_fills_the_gap(
    make_account: Callable[..., Any], dovecot: Dovecot, subscriber_app: Flask
) -> None:
    proxy = FaultProxy(dovecot.imaps_port).start()
    try:
        account = make_account(incoming_port=proxy.port)
        subscriptions.subscribe(account, f"{__name__}.record_new_email", f"{__name__}.record_state")
        with Running(subscriber_app):
            wait_for(lambda: _state(account.id) == SubscriptionState.CONNECTED, what="CONNECTED")
            proxy.set("reset")  # the connection dies; new ones are reset too
            wait_for(
                lambda: _state(account.id) == SubscriptionState.CONNECTIONTOSERVERLOST, what="CONNECTIONTOSERVERLOST"
            )
            for index in range(3):  # delivered while disconnected
                dovecot.deliver("alice", make_message(index, "text"))
            proxy.set("pass")
            wait_for(lambda: _state(account.id) == SubscriptionState.RECONNECTED, what="RECONNECTED")
            wait_for(lambda: len(_handed()) == 3, what="the gap filled after reconnecting")
            dovecot.deliver("alice", make_message(3, "text"))
            wait_for(lambda: len(_handed()) == 4, timeout=5, what="new mail after the reconnect")
    finally:
        proxy.stop()
    assert _stored(account.id) == 4 and len(set(_handed())) == 4


def test_a_server_without_idle_is_polled(
    make_account: Callable[..., Any], dovecot: Dovecot, subscriber_app: Flask
) -> None:
    """A server that does not offer IDLE (the proxy takes it out of every CAPABILITY list) is polled every
    SUBSCRIPTION_POLL_SECONDS (a NOOP on the listening connection, then a fetch): new mail still arrives,
    once, and IDLE is never sent."""
    proxy = FaultProxy(dovecot.imap_port).start()
    proxy.rewrite(b" IDLE", b"")
    try:
        account = make_account(incoming_security="none", incoming_port=proxy.port)
        subscriptions.subscribe(account, f"{__name__}.record_new_email", f"{__name__}.record_state")
        with Running(subscriber_app):
            wait_for(lambda: _state(account.id) == SubscriptionState.CONNECTED, what="CONNECTED")
            wait_for(lambda: STATES, what="the CONNECTED state handed to on_state_changed")
            assert "polling every 1 s (the server has no IDLE)" in STATES[0][1]
            wait_for(lambda: _runs() == [("finished", 0, None)], what="the fill after connecting")
            for index in range(3):
                dovecot.deliver("alice", make_message(index, "text"))
                wait_for(lambda i=index: len(_handed()) == i + 1, timeout=10, what=f"message {index} by polling")
            polled = b"".join(proxy.from_client).count(b" NOOP\r\n")
            wait_for(lambda: b"".join(proxy.from_client).count(b" NOOP\r\n") > polled, what="one more poll")
    finally:
        proxy.stop()
    sent = b"".join(proxy.from_client)
    assert b" IDLE\r\n" not in sent and b" NOOP\r\n" in sent
    assert [state for state, _ in STATES] == ["CONNECTED"]  # the listening connection held throughout
    # The history: the fill after connecting, and one row per poll that found mail; the empty polls left none.
    assert [(status, stored) for status, stored, _ in _runs()] == [("finished", 0)] + [("finished", 1)] * 3
    assert _stored(account.id) == 3 and sorted(set(_handed())) == sorted(_handed())


def test_a_silent_connection_is_noticed_by_the_watchdog(
    make_account: Callable[..., Any], dovecot: Dovecot, subscriber_app: Flask
) -> None:
    proxy = FaultProxy(dovecot.imaps_port).start()
    try:
        account = make_account(incoming_port=proxy.port, timeout=2)
        subscriptions.subscribe(account, f"{__name__}.record_new_email")
        with Running(subscriber_app):
            wait_for(lambda: _state(account.id) == SubscriptionState.CONNECTED, what="CONNECTED")
            proxy.set("blackhole")  # no RST: bytes go nowhere, nothing comes back
            wait_for(
                lambda: _state(account.id) == SubscriptionState.CONNECTIONTOSERVERLOST,
                timeout=20,
                what="the silent connection noticed",
            )
            dovecot.deliver("alice", make_message(0, "text"))
            proxy.set("pass")
            wait_for(lambda: len(_handed()) == 1, timeout=20, what="mail delivered while silent, after reconnecting")
    finally:
        proxy.stop()


def test_retries_exhausted_are_reported(
    make_account: Callable[..., Any], dovecot: Dovecot, subscriber_app: Flask
) -> None:
    proxy = FaultProxy(dovecot.imaps_port).start()
    try:
        account = make_account(incoming_port=proxy.port)
        subscriptions.subscribe(account, None, f"{__name__}.record_state")
        with Running(subscriber_app):
            wait_for(lambda: _state(account.id) == SubscriptionState.CONNECTED, what="CONNECTED")
            proxy.set("reset")
            wait_for(
                lambda: _state(account.id) == SubscriptionState.CONNECTIONRETRYEXHAUSTED,
                timeout=30,
                what="CONNECTIONRETRYEXHAUSTED",
            )
    finally:
        proxy.stop()
    lost = [s for s, _ in STATES if s == "CONNECTIONTOSERVERLOST"]
    assert len(lost) == FAST["SUBSCRIPTION_RETRIES"]
    assert STATES[-1][0] == "CONNECTIONRETRYEXHAUSTED"


def test_two_subscribers_hold_each_account_once_and_take_over(
    make_account: Callable[..., Any], dovecot: Dovecot, subscriber_app: Flask, make_app: Callable[..., Flask]
) -> None:
    account = make_account()
    subscriptions.subscribe(account, f"{__name__}.record_new_email")
    first, second = Running(subscriber_app), Running(make_app(**FAST))
    with first, second:
        wait_for(lambda: _state(account.id) == SubscriptionState.CONNECTED, what="CONNECTED")
        wait_for(lambda: len(first.subscriber.listeners) + len(second.subscriber.listeners) == 1, what="one holder")
        # Both go on checking, five rounds each at least: still exactly one holds it.
        rounds = first.subscriber.rounds + 5, second.subscriber.rounds + 5

        def one_holder_while_both_check() -> bool:
            assert len(first.subscriber.listeners) + len(second.subscriber.listeners) == 1
            return first.subscriber.rounds >= rounds[0] and second.subscriber.rounds >= rounds[1]

        wait_for(one_holder_while_both_check, what="five rounds of checks by each")
        holder, other = (first, second) if first.subscriber.listeners else (second, first)
        holder.stop.set()  # the holder ends (its lease is released): the other takes over
        holder.thread.join(timeout=30)
        wait_for(lambda: len(other.subscriber.listeners) == 1, timeout=10, what="the other took over")
        dovecot.deliver("alice", make_message(0, "text"))
        wait_for(lambda: len(_handed()) == 1, timeout=10, what="mail after the takeover")


def test_hundreds_of_deliveries_through_every_fault_lose_nothing_and_double_nothing(
    make_account: Callable[..., Any], dovecot: Dovecot, subscriber_app: Flask
) -> None:
    """200 messages, delivered in five runs of 40; between runs the connection is reset, the server says
    BYE (doveadm kick), the connection goes silent (no RST), and Dovecot restarts. Every message is
    stored once and handed over once."""
    proxy = FaultProxy(dovecot.imaps_port).start()
    delivered = 0

    def deliver_run(count: int = 40) -> None:
        nonlocal delivered
        for _ in range(count):
            dovecot.deliver("alice", make_message(delivered, "text"))
            delivered += 1

    def lost_then_back(fault: Callable[[], object], timeout: float = 20) -> None:
        fault()
        wait_for(lambda: _state(account.id) == SubscriptionState.CONNECTIONTOSERVERLOST, timeout, f"{fault} noticed")
        deliver_run()  # while disconnected
        proxy.set("pass")
        wait_for(lambda: _state(account.id) == SubscriptionState.RECONNECTED, timeout, "RECONNECTED")
        wait_for(lambda: len(_handed()) == delivered, timeout, f"the {delivered} delivered so far handed over")

    try:
        account = make_account(incoming_port=proxy.port, timeout=2)
        subscriptions.subscribe(account, f"{__name__}.record_new_email", f"{__name__}.record_state")
        with Running(subscriber_app):
            wait_for(lambda: _state(account.id) == SubscriptionState.CONNECTED, what="CONNECTED")
            deliver_run()  # while connected
            wait_for(lambda: len(_handed()) == delivered, what="the first 40")
            lost_then_back(lambda: proxy.set("reset"))
            lost_then_back(lambda: dovecot.doveadm("kick", "alice"))
            lost_then_back(lambda: proxy.set("blackhole"))
            lost_then_back(dovecot.restart)
            wait_for(
                lambda: len(_handed()) == delivered,
                timeout=30,
                what=f"all {delivered} handed over ({len(_handed())}, stored {_stored(account.id)}, {STATES}, {_runs()}"
                f" {dovecot.log_tail(40)})",
            )
            assert delivered == 200
    finally:
        proxy.stop()
    handed = _handed()
    assert len(handed) == len(set(handed)) == 200
    assert _stored(account.id) == 200
    states = [state for state, _ in STATES]
    assert states.count("RECONNECTED") >= 4 and "CONNECTIONRETRYEXHAUSTED" not in states
