"""Two real ``email-connector subscriber`` processes for the same accounts: each account is held by exactly
one of them; SIGKILL the one holding an account and the other takes it over within the lease time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.servers.dovecot import Dovecot
from tests.servers.messages import make as make_message
from webapp.extensions import db
from webapp.models import EmailMessage, Subscription
from webapp.models.subscription import SubscriptionState
from webapp.services.platform.redisconn import coordination
from webapp.services.receiving import subscriptions

LEASE_SECONDS = 3
FAST = {
    "EMAILCONNECTOR_SUBSCRIPTION_IDLE_SECONDS": "2",
    "EMAILCONNECTOR_SUBSCRIPTION_LEASE_SECONDS": str(LEASE_SECONDS),
    "EMAILCONNECTOR_SUBSCRIPTION_CHECK_SECONDS": "0.3",
    "EMAILCONNECTOR_SUBSCRIPTION_BACKOFF_SECONDS": "0.2",
    "EMAILCONNECTOR_SUBSCRIPTION_BACKOFF_MAX_SECONDS": "1",
}


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)  # polling a state, bounded
    raise AssertionError(f"not within {timeout} s: {what}")


@pytest.fixture
def subscribers(worker_env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    exe = Path(sys.executable).with_name("email-connector")
    started = []
    for number in range(2):
        with (tmp_path / f"subscriber-{number}.log").open("wb") as log:
            started.append(
                subprocess.Popen([str(exe), "subscriber"], env={**worker_env, **FAST}, stdout=log, stderr=log)
            )
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _holders(ids: list[int]) -> dict[int, int | None]:
    """Each subscription's lease holder, as a process id (None: free)."""
    found: dict[int, int | None] = {}
    for subscription_id in ids:
        token = coordination().lock(f"subscription:{subscription_id}", LEASE_SECONDS).holder()
        found[subscription_id] = int(token.split(":")[1]) if token else None
    return found


def _states(ids: list[int]) -> dict[int, str]:
    db.session.rollback()
    return dict(db.session.execute(select(Subscription.id, Subscription.state).where(Subscription.id.in_(ids))).all())


def test_each_account_is_held_once_and_taken_over_after_a_kill(
    make_account: Callable[..., Any], dovecot: Dovecot, subscribers: list[subprocess.Popen[bytes]]
) -> None:
    accounts = [make_account(name=f"Box {n}") for n in range(3)]
    ids = [subscriptions.subscribe(account).id for account in accounts]
    pids = {p.pid for p in subscribers}

    def all_connected() -> bool:
        states = _states(ids)
        return all(states[i] in (SubscriptionState.CONNECTED, SubscriptionState.RECONNECTED) for i in ids)

    wait_for(all_connected, 30, "every subscription connected")
    holders = _holders(ids)
    assert set(holders.values()) <= pids and None not in holders.values(), holders
    db.session.rollback()
    shown = dict(db.session.execute(select(Subscription.id, Subscription.holder).where(Subscription.id.in_(ids))).all())
    assert all(shown[i].endswith(f":{holders[i]}") for i in ids), (shown, holders)

    victim_pid = holders[ids[0]]
    victim = next(p for p in subscribers if p.pid == victim_pid)
    survivor = next(p for p in subscribers if p.pid != victim_pid)
    os.kill(victim_pid, signal.SIGKILL)
    victim.wait(timeout=10)
    killed_at = time.monotonic()
    wait_for(lambda: set(_holders(ids).values()) == {survivor.pid}, LEASE_SECONDS + 10, "the survivor holds all")
    assert time.monotonic() - killed_at < LEASE_SECONDS + 10
    wait_for(all_connected, 20, "every subscription connected again")

    dovecot.deliver("alice", make_message(0, "text"))

    def stored_everywhere() -> bool:
        db.session.rollback()
        counts = db.session.execute(
            select(EmailMessage.account_id, func.count()).group_by(EmailMessage.account_id)
        ).all()
        return len(counts) == 3 and all(count == 1 for _account, count in counts)

    wait_for(stored_everywhere, 20, "the new message stored once for each account")
    assert survivor.poll() is None
