"""The subscriber: the long-lived process that listens to subscribed accounts (IMAP IDLE).

Every ``SUBSCRIPTION_CHECK_SECONDS`` it reads which subscriptions are active and takes each one it can:
a lease in Redis per subscription (``subscription:<id>``), renewed at every check, so an account is
held by exactly one subscriber process across all machines; a process that stops renewing (killed,
its machine gone) loses the lease after ``SUBSCRIPTION_LEASE_SECONDS`` and another takes it over (at
once on the same machine, where a dead holder's process id can be checked).

Each held subscription has a thread of its own:

1. connect and log in, EXAMINE the account's folder (state CONNECTED, or RECONNECTED after a drop);
2. fill the gap: a fetch of the account as its settings say (``fetchruns.run``) — the same path, the
   same checkpoints as any fetch, so every message is stored exactly once and becomes one
   ``new_email`` event;
3. IDLE (``ImapSession.idle``) until the server announces mail, then fetch again; every
   ``SUBSCRIPTION_IDLE_SECONDS`` DONE and a new IDLE, which also proves the connection alive;
4. on a dropped, reset or silent connection: CONNECTIONTOSERVERLOST, a wait (capped exponential
   backoff with jitter), and from 1 again; after ``SUBSCRIPTION_RETRIES`` failures in a row,
   CONNECTIONRETRYEXHAUSTED. Wrong credentials (or a folder that cannot be opened before the first
   connection succeeded): SUBSCRIPTIONFAILED. Both stop the thread until the subscription is started
   again. A server without IDLE is fetched every ``SUBSCRIPTION_POLL_SECONDS`` instead.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass

from flask import Flask

from webapp.adapters.coordination import Lock
from webapp.adapters.errors import AdapterError, AuthError, PermanentError
from webapp.adapters.mail import imap
from webapp.extensions import db
from webapp.models import EmailAccount
from webapp.models.fetchrun import RunTrigger
from webapp.models.subscription import SubscriptionState
from webapp.services.account import accounts, errorlog
from webapp.services.errors import ConnectionFailed, ConnectorError
from webapp.services.platform.redisconn import coordination
from webapp.services.receiving import fetchlock, fetchruns, subscriptions
from webapp.services.receiving.fetchlock import AlreadyRunning, holder_is_dead

log = logging.getLogger(__name__)

# A fetch of the account already running (a page, the schedule): try ours again this often.
BUSY_PAUSE_SECONDS = 1.0
# A listener thread that ended unexpectedly is started again no sooner than this.
CRASH_PAUSE_SECONDS = 30.0


@dataclass(frozen=True)
class Settings:
    idle_seconds: float
    poll_seconds: float
    retries: int
    backoff_seconds: float
    backoff_max_seconds: float
    lease_seconds: int
    check_seconds: float

    @classmethod
    def of(cls, app: Flask) -> Settings:
        """The app's SUBSCRIPTION_* settings (webapp.config)."""
        config = app.config
        return cls(
            idle_seconds=float(config["SUBSCRIPTION_IDLE_SECONDS"]),
            poll_seconds=float(config["SUBSCRIPTION_POLL_SECONDS"]),
            retries=int(config["SUBSCRIPTION_RETRIES"]),
            backoff_seconds=float(config["SUBSCRIPTION_BACKOFF_SECONDS"]),
            backoff_max_seconds=float(config["SUBSCRIPTION_BACKOFF_MAX_SECONDS"]),
            lease_seconds=int(config["SUBSCRIPTION_LEASE_SECONDS"]),
            check_seconds=float(config["SUBSCRIPTION_CHECK_SECONDS"]),
        )

    def backoff(self, failures: int, rng: random.Random | None = None) -> float:
        """The wait before reconnect number ``failures``: base * 2^(n-1), capped, times 0.5 to 1.5."""
        wait = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(0, failures - 1))
        return wait * (rng or random).uniform(0.5, 1.5)


class Subscriber:
    """One subscriber process's listeners (see the module docstring). ``run(stop)`` until ``stop`` is set."""

    def __init__(self, app: Flask, settings: Settings | None = None) -> None:
        self.app = app
        self.settings = settings or Settings.of(app)
        # The lease's token names this process (dead holders on this machine are taken over at once);
        # the holder shown on the pages is the machine and process id.
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.listeners: dict[int, _Listener] = {}
        self.crashed: dict[int, float] = {}
        self.rounds = 0  # checks done (how tests and the log tell it is alive)
        self.stopping: list[_Listener] = []  # told to stop; their leases go once they have

    def run(self, stop: threading.Event) -> None:
        """Check, take and renew subscriptions every SUBSCRIPTION_CHECK_SECONDS until ``stop`` is set; then
        let every listener go (DONE, LOGOUT) and free their leases."""
        try:
            while not stop.is_set():
                try:
                    with self.app.app_context():
                        self.check()
                    self.rounds += 1
                except Exception:  # Redis or the database away for a moment: try again
                    log.exception("subscriber: checking the subscriptions failed")
                stop.wait(self.settings.check_seconds)
        finally:
            with self.app.app_context():
                self._stop_all()

    def check(self) -> None:
        """One round: drop what is no longer ours or wanted, renew the rest, take what is free."""
        self._reap()
        wanted = subscriptions.wanted()
        db.session.rollback()  # no transaction stays open between rounds
        for subscription_id, listener in list(self.listeners.items()):
            want = wanted.get(subscription_id)
            if not listener.is_alive():
                if want is not None and not listener.finished:
                    self.crashed[subscription_id] = time.monotonic()
                self._drop(subscription_id, release=True)
            elif want is None or want[1] != listener.generation:
                self._drop(subscription_id, release=True)
            elif not self._lock(subscription_id).refresh(self.token):
                log.warning("subscriber: lost the lease of subscription %s to another process", subscription_id)
                self._drop(subscription_id, release=False)
        stopping = {listener.subscription_id for listener in self.stopping}
        for subscription_id, (account_id, generation) in wanted.items():
            if subscription_id in self.listeners or subscription_id in stopping:
                continue
            if time.monotonic() - self.crashed.get(subscription_id, -CRASH_PAUSE_SECONDS) < CRASH_PAUSE_SECONDS:
                continue
            if not self._take(subscription_id):
                continue
            listener = _Listener(self, subscription_id, account_id, generation)
            self.listeners[subscription_id] = listener
            listener.start()

    def _lock(self, subscription_id: int) -> Lock:
        return coordination().lock(f"subscription:{subscription_id}", self.settings.lease_seconds)

    def _take(self, subscription_id: int) -> bool:
        lock = self._lock(subscription_id)
        if lock.acquire(self.token):
            return True
        holder = lock.holder()
        return bool(holder and holder != self.token and holder_is_dead(holder) and lock.replace(holder, self.token))

    def _drop(self, subscription_id: int, *, release: bool) -> None:
        """Tell the listener to stop; its lease is released once it has (see :meth:`_reap`). Not waited for
        here: DONE and LOGOUT can take the account's timeout, and the other leases must be renewed."""
        listener = self.listeners.pop(subscription_id)
        listener.stop.set()
        listener.release = release
        self.stopping.append(listener)
        self._reap()

    def _reap(self) -> None:
        """Release the leases of the listeners that have stopped."""
        for listener in list(self.stopping):
            listener.join(timeout=0.05)
            if listener.is_alive():
                continue
            self.stopping.remove(listener)
            if listener.release:
                self._lock(listener.subscription_id).release(self.token)

    def _stop_all(self) -> None:
        """At the end of :meth:`run`: stop every listener and wait for each (bounded), then free the leases."""
        for subscription_id in list(self.listeners):
            self._drop(subscription_id, release=True)
        for listener in list(self.stopping):
            listener.join(timeout=listener.timeout * 2 + 5)  # DONE and LOGOUT, the account's timeout each
        self._reap()


@dataclass
class _Progress:
    failures: int = 0
    connected_once: bool = False


class _Listener(threading.Thread):
    """One subscription's connection (see the module docstring, steps 1-4)."""

    def __init__(self, subscriber: Subscriber, subscription_id: int, account_id: int, generation: int) -> None:
        super().__init__(name=f"subscription-{subscription_id}", daemon=True)
        self.subscriber = subscriber
        self.settings = subscriber.settings
        self.subscription_id = subscription_id
        self.account_id = account_id
        self.generation = generation
        self.stop = threading.Event()
        self.finished = False  # ended as it meant to (stopped, or gave up with its state recorded)
        self.release = True  # free the lease once stopped (not when another process has taken it)
        self.timeout = 30.0

    def run(self) -> None:
        with self.subscriber.app.app_context():
            try:
                self._listen()
                self.finished = True
            except Exception:  # logged; the subscriber starts it again after a pause
                log.exception("subscription %s: the listener stopped unexpectedly", self.subscription_id)
            finally:
                db.session.remove()

    def _listen(self) -> None:
        progress = _Progress()
        while not self.stop.is_set():
            account = db.session.get(EmailAccount, self.account_id)
            if account is None:
                return
            try:
                self._connected(account, progress)
            except AuthError as exc:
                self._give_up(account, SubscriptionState.SUBSCRIPTIONFAILED, f"Incoming server: {exc}")
                return
            except (AdapterError, ConnectorError) as exc:
                if self.stop.is_set():
                    return
                if _is_final(exc, progress):
                    self._give_up(account, SubscriptionState.SUBSCRIPTIONFAILED, f"Incoming server: {exc}")
                    return
                progress.failures += 1
                if progress.failures > self.settings.retries:
                    reason = f"gave up after {self.settings.retries} failed reconnects; the last: {exc}"
                    self._give_up(account, SubscriptionState.CONNECTIONRETRYEXHAUSTED, reason)
                    return
                wait = self.settings.backoff(progress.failures)
                self._state(
                    SubscriptionState.CONNECTIONTOSERVERLOST,
                    f"{exc}; reconnecting in {wait:.1f} s (attempt {progress.failures} of {self.settings.retries})",
                )
                self.stop.wait(wait)
            finally:
                db.session.rollback()

    def _connected(self, account: EmailAccount, progress: _Progress) -> None:
        endpoint = accounts.incoming_endpoint(account)
        self.timeout = endpoint.timeout
        folder = endpoint.folder or "INBOX"
        with imap.session(endpoint, accounts.incoming_auth(account)) as session:
            session.examine(folder)
            db.session.rollback()
            poll = f"polling every {self.settings.poll_seconds:g} s (the server has no IDLE)"
            how = "listening (IDLE)" if session.can_idle else poll
            state = SubscriptionState.RECONNECTED if progress.connected_once else SubscriptionState.CONNECTED
            self._state(state, f"{folder} on {endpoint.describe()}: {how}")
            progress.connected_once = True
            # A fetch is owed until one has run: the gap now, and whatever the server announces later.
            # While another fetch of the account runs (a page, the schedule), ours waits for it and then
            # catches what arrived after it started: the owed fetch is tried again after a short IDLE.
            owed = not self._fill(account, after_connecting=True)
            progress.failures = 0  # connected: the next drop starts the count again
            while not self.stop.is_set():
                if session.can_idle:
                    wait = BUSY_PAUSE_SECONDS if owed else self.settings.idle_seconds
                    news = session.idle(wait, self.stop.is_set)
                else:
                    self.stop.wait(BUSY_PAUSE_SECONDS if owed else self.settings.poll_seconds)
                    session.noop()
                    news = True
                if (news or owed) and not self.stop.is_set():
                    owed = not self._fill(account)

    def _fill(self, account: EmailAccount, *, after_connecting: bool = False) -> bool:
        """Fetch the account (the gap after a (re)connect, or what the server just announced); False when
        another fetch of it is running (then ours is still owed). The history keeps the fill after each
        (re)connect; a wake-up or a poll that found nothing leaves no row."""
        if fetchlock.is_held(account.id):
            return False  # not even tried: no failed run in the history, no error event
        try:
            summary = fetchruns.run(account, trigger=RunTrigger.IDLE, record_empty=after_connecting)
        except AlreadyRunning:
            return False  # it started just now
        subscriptions.note_new_mail(self.subscription_id, summary.stored)
        return True

    def _state(self, state: SubscriptionState, comment: str) -> None:
        subscriptions.set_state(self.subscription_id, self.generation, state, comment, self.subscriber.name)

    def _give_up(self, account: EmailAccount, state: SubscriptionState, reason: str) -> None:
        self._state(state, reason)
        errorlog.record(account, "subscribe", reason)


def _is_final(exc: Exception, progress: _Progress) -> bool:
    """A refusal that retrying cannot mend: before the first connection succeeded, a permanent error
    that is not about reaching the server (a folder that cannot be opened, a protocol refusal)."""
    if progress.connected_once:
        return False
    if isinstance(exc, ConnectionFailed):
        return exc.kind in ("auth", "folder")
    return isinstance(exc, PermanentError) and str(getattr(exc, "kind", "")) in ("auth", "folder", "protocol")


def run_forever(app: Flask, stop: threading.Event) -> None:
    """The ``email-connector subscriber`` process: a Subscriber until ``stop`` is set (SIGTERM, Ctrl-C)."""
    Subscriber(app).run(stop)
