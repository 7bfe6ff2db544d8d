"""Draining the outbox: claim due messages, send them over one reused SMTP session, record each outcome.

The database is the truth; Redis only limits how many connections an account uses at once and nudges
workers. A message's life: QUEUED → SENDING (claimed by one drain, with a lease) → SENT, or back to
QUEUED with a next-attempt time (4xx, connection errors), or FAILED (5xx, or the account's max attempts).

No double sends: before a message's content goes, the drain has committed ``send_stage = "data"`` for
it. The marks are committed a window ahead (``MARK_WINDOW`` messages at a time, with the outcomes
recorded so far), by a writer thread while the messages before them go out, so the sending never waits
for a commit. A drain that dies leaves its lease to expire; :func:`sweep` then puts back what never
reached DATA and marks the rest *possibly sent* (FAILED, with the reason) instead of sending it again —
over-cautious for the marked messages of the window that had not gone out yet, never a double send.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from concurrent.futures import Future
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import cast

from flask import current_app
from sqlalchemy import Connection, Table, and_, bindparam, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from webapp.adapters.errors import AdapterError, PermanentError
from webapp.adapters.mail import smtp
from webapp.database import write_on, write_transaction
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage
from webapp.models.base import utcnow
from webapp.models.message import SENT_FOLDER, MessageStatus
from webapp.services.account import accounts, errorlog
from webapp.services.outgoing import sentcopy
from webapp.services.platform import blobs
from webapp.services.platform.failpoints import NONE as NO_FAILPOINTS
from webapp.services.platform.failpoints import FailPoint, FailPoints
from webapp.services.platform.redisconn import coordination

log = logging.getLogger(__name__)

CLAIM_CHUNK = 50
BACKOFF_BASE_SECONDS = 60
BACKOFF_CAP_SECONDS = 3600
# DATA marks committed at a time, ahead of the sending: a killed drain leaves at most about this many
# messages "possibly sent" that were not (and those sent since the last commit), against one commit per
# message, which made sending wait for the database (PostgreSQL's synchronous commit most of all).
MARK_WINDOW = 8
STORE_RETRIES = 5  # recording an outcome the server already acted on: worth waiting for the database
POSSIBLY_SENT = (
    "the sending worker stopped after handing the message to the server: it may have been delivered. "
    "Check with a recipient before retrying"
)


# The statements a drain runs for every message, built once (Core, no ORM bookkeeping per message).
_TABLE = cast(Table, EmailMessage.__table__)
_OURS = and_(_TABLE.c.id == bindparam("b_id"), _TABLE.c.lease_owner == bindparam("b_owner"))
_RECORD = (
    update(_TABLE)
    .where(_OURS)
    .values(
        status=bindparam("status"),
        accepted=bindparam("accepted"),
        attempts=bindparam("attempts"),
        last_error=bindparam("last_error"),
        next_attempt_at=bindparam("next_attempt_at"),
        possibly_sent=bindparam("possibly_sent"),
        sent_at=bindparam("sent_at"),
        folder=bindparam("folder"),
        lease_owner=None,
        lease_until=None,
        send_stage=None,
    )
)
_MARK_DATA = (
    update(_TABLE)
    .where(_TABLE.c.id.in_(bindparam("ids", expanding=True)), _TABLE.c.lease_owner == bindparam("b_owner"))
    .values(send_stage="data")
    .returning(_TABLE.c.id)
)
_RENEW = (
    update(_TABLE)
    .where(_TABLE.c.lease_owner == bindparam("b_owner"), _TABLE.c.status == MessageStatus.SENDING)
    .values(lease_until=bindparam("until"))
)
# Drafts and queued mail live in the folder "" (see services.outgoing.outbox); sent mail in Sent.
OUTBOX_FOLDER = ""
# The lease owner of a draft being sent now by a page or a call (services.outgoing.drafts), not a drain.
DRAFT_TAKER = "draft"


def lease_seconds() -> int:
    """How long a claim holds (``SEND_LEASE_SECONDS``); the drain renews it five times as often."""
    return int(current_app.config["SEND_LEASE_SECONDS"])


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failed try: exponential, capped, with jitter (0.5 to 1.5 times)
    so that many messages failing together do not come back together."""
    base = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return timedelta(seconds=base * (0.5 + (rng or random).random()))


class LeaseLost(Exception):
    """The message's lease expired and the sweep gave it back before its DATA: another worker sends it."""


@dataclass
class DrainResult:
    """What one drain did: counts of messages, and the reasons of failures worth showing."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0
    busy: bool = False  # every connection of the account was in use elsewhere
    errors: list[str] = field(default_factory=list)

    def add(self, other: DrainResult) -> None:
        """Add ``other``'s counts to these."""
        self.sent += other.sent
        self.retrying += other.retrying
        self.failed += other.failed
        self.errors.extend(other.errors)


@dataclass
class _Outcome:
    """What happened to one claimed message, waiting to be written (see Drain._flush)."""

    message_id: int
    status: str
    accepted: list[str]
    attempts: int
    last_error: str | None = None
    next_attempt_at: datetime | None = None
    possibly_sent: bool = False
    sent_at: datetime | None = None


@dataclass(frozen=True)
class _Claimed:
    """What sending a claimed message needs, read once (rows expire at each commit)."""

    id: int
    raw_sha256: str
    envelope: tuple[str, ...]
    accepted: tuple[str, ...]
    attempts: int


def new_owner() -> str:
    """A drain's name in leases: machine, process and a random part."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def claim(account_id: int, owner: str, limit: int, now: datetime | None = None) -> list[int]:
    """Claim up to ``limit`` of the account's due QUEUED messages for ``owner``; their ids, oldest first.

    Two statements in one write transaction: the candidates are selected (on PostgreSQL locked with SKIP
    LOCKED, so concurrent drains take different rows without waiting; on SQLite the transaction holds the
    database's write lock), then claimed. Not one UPDATE … WHERE id IN (SELECT … LIMIT … SKIP LOCKED):
    PostgreSQL may run such a subquery again for a later row, skip the rows the UPDATE has just changed,
    and so claim more than ``limit`` (found by CI: a rate-limited drain sent two messages without a pause).
    """
    now = now or utcnow()
    due = (
        select(EmailMessage.id)
        .where(
            EmailMessage.account_id == account_id,
            EmailMessage.status == MessageStatus.QUEUED,
            or_(EmailMessage.send_after.is_(None), EmailMessage.send_after <= now),
            or_(EmailMessage.next_attempt_at.is_(None), EmailMessage.next_attempt_at <= now),
        )
        .order_by(EmailMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    with write_transaction():
        candidates = db.session.scalars(due).all()
        claimed: Sequence[int] = []
        if candidates:
            claimed = db.session.scalars(
                update(EmailMessage)
                .where(EmailMessage.id.in_(candidates), EmailMessage.status == MessageStatus.QUEUED)
                .values(
                    status=MessageStatus.SENDING,
                    lease_owner=owner,
                    lease_until=now + timedelta(seconds=lease_seconds()),
                    send_stage=None,
                )
                .returning(EmailMessage.id)
                .execution_options(synchronize_session=False)
            ).all()
        db.session.commit()
    return sorted(claimed)


def sweep(now: datetime | None = None) -> tuple[int, int]:
    """Expired leases: messages that never reached DATA go back to QUEUED, the others are FAILED as
    possibly sent. Returns (requeued, marked possibly sent)."""
    now = now or utcnow()
    expired = and_(
        EmailMessage.status == MessageStatus.SENDING,
        EmailMessage.lease_until < now,
        or_(EmailMessage.lease_owner.is_(None), EmailMessage.lease_owner != DRAFT_TAKER),
    )
    with write_transaction():
        # A draft whose sender (a page request) died while sending it now: it is a draft again.
        db.session.execute(
            update(EmailMessage)
            .where(
                EmailMessage.status == MessageStatus.SENDING,
                EmailMessage.lease_until < now,
                EmailMessage.lease_owner == DRAFT_TAKER,
            )
            .values(status=MessageStatus.DRAFT, lease_owner=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )
        marked = db.session.execute(
            update(EmailMessage)
            .where(expired, EmailMessage.send_stage == "data")
            .values(
                status=MessageStatus.FAILED,
                possibly_sent=True,
                last_error=POSSIBLY_SENT,
                lease_owner=None,
                lease_until=None,
                send_stage=None,
            )
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        requeued = db.session.execute(
            update(EmailMessage)
            .where(expired)
            .values(status=MessageStatus.QUEUED, lease_owner=None, lease_until=None, send_stage=None)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        db.session.commit()
    if marked:
        log.warning("outbox sweep: %d message(s) possibly sent by a worker that stopped", marked)
    return requeued or 0, marked or 0


def due_accounts(now: datetime | None = None) -> list[int]:
    """The ids of the accounts with due queued mail."""
    now = now or utcnow()
    query = (
        select(EmailMessage.account_id)
        .where(
            EmailMessage.status == MessageStatus.QUEUED,
            or_(EmailMessage.send_after.is_(None), EmailMessage.send_after <= now),
            or_(EmailMessage.next_attempt_at.is_(None), EmailMessage.next_attempt_at <= now),
        )
        .distinct()
    )
    return sorted(db.session.scalars(query))


@contextmanager
def connection_slot(account: EmailAccount) -> Iterator[Callable[[], bool] | None]:
    """One of the account's ``send_connections`` slots (a lock in Redis, expiring with the lease), as the
    function that renews it; None when all are taken."""
    store = coordination()
    token = uuid.uuid4().hex
    for slot in range(max(1, account.send_connections)):
        lock = store.lock(f"outbox:connection:{account.id}:{slot}", lease_seconds())
        if lock.acquire(token):
            try:
                yield partial(lock.refresh, token)
            finally:
                lock.release(token)
            return
    yield None


def drain(
    account: EmailAccount,
    *,
    limit: int | None = None,
    now: datetime | None = None,
    failpoints: FailPoints = NO_FAILPOINTS,
) -> DrainResult:
    """Send the account's due queued mail over one connection (if one of its slots is free), until none
    is due or ``limit`` messages were tried."""
    with connection_slot(account) as renew_slot:
        if renew_slot is None:
            return DrainResult(busy=True)
        return Drain(account, new_owner(), now=now, failpoints=failpoints, renew_slot=renew_slot).run(limit)


class Drain:
    """One connection's worth of sending for an account (see the module docstring)."""

    def __init__(
        self,
        account: EmailAccount,
        owner: str,
        *,
        now: datetime | None = None,
        failpoints: FailPoints = NO_FAILPOINTS,
        renew_slot: Callable[[], bool] | None = None,
    ) -> None:
        self.account = account
        self.renew_slot = renew_slot
        # Read once: the account's row expires at every commit, and reloading it per message costs a query.
        self.sender = account.address
        self.max_attempts = max(1, account.max_send_attempts)
        # One writer thread: a message's outcome is committed while the next one's envelope goes out.
        self.engine = db.engine
        self.lease = lease_seconds()  # read here: the writer thread has no app context
        self.writer = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-writer")
        self.writer_connection: Connection | None = None  # the writer thread's own, held for the whole drain
        self.reader = futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-reader")
        self.account_id = account.id
        self.owner = owner
        self.now = now
        self.failpoints = failpoints
        self.result = DrainResult()
        self.pending: list[_Outcome] = []
        self.log_entries: list[tuple[str, str]] = []  # Error-log entries, written with the outcomes
        # "Put a copy in the server's Sent folder": IMAP accounts only (POP3 has no folders).
        self.copy_to_sent = account.append_to_sent and account.incoming_protocol == "imap"
        self.sent_copies: list[str] = []
        self.lease_renewed = time.monotonic()
        per_minute = account.send_per_minute
        self.interval = 60.0 * max(1, account.send_connections) / per_minute if per_minute > 0 else 0.0
        self.last_send = 0.0

    def run(self, limit: int | None = None) -> DrainResult:
        """Claim and send chunk after chunk until nothing is due (or ``limit`` messages were tried)."""
        tried = 0
        with ExitStack() as connection:
            session: smtp.SmtpSession | None = None
            try:
                while limit is None or tried < limit:
                    chunk = CLAIM_CHUNK if limit is None else min(CLAIM_CHUNK, limit - tried)
                    if self.interval:
                        # Rate-limited: wait first, then claim one message, so that no claimed message waits
                        # out the pause (its lease could expire and another worker take it).
                        self._pace()
                        chunk = 1
                    ids = claim(self.account_id, self.owner, chunk, self.now)
                    if not ids:
                        break
                    tried += len(ids)
                    if session is None:
                        try:
                            session = connection.enter_context(self._connect())
                        except AdapterError as exc:
                            self._connection_failed(ids, f"Outgoing server: {exc}", exc)
                            break
                    if not self._send_chunk(session, ids):
                        break  # the connection broke: the rest of the chunk went back
            finally:
                self.writer.submit(self._close_writer_connection)  # in its own thread, after the last write
                self.writer.shutdown(wait=True)
                self.reader.shutdown(wait=True, cancel_futures=True)
                self._flush()
        if self.sent_copies:
            self._append_to_sent()
        return self.result

    def _append_to_sent(self) -> None:
        problem = sentcopy.copy_to_sent_folder(self.account, self.sent_copies)
        if problem:
            self.result.errors.append(problem)

    def _connect(self) -> AbstractContextManager[smtp.SmtpSession]:
        if not self.account.sends:  # made receive-only with mail still queued: each attempt says why
            raise PermanentError("the account has no outgoing server (it is receive-only)", kind="protocol")
        credentials = accounts.outgoing_auth(self.account)
        self.failpoints.hit("send_smtp")
        return smtp.session(accounts.outgoing_endpoint(self.account), credentials)

    def _send_chunk(self, session: smtp.SmtpSession, ids: Sequence[int]) -> bool:
        """Send the claimed messages ``ids`` in order; False when the connection broke (the rest are back)."""
        rows = {m.id: m for m in self._snapshots(ids)}
        # The chunk's bytes are read by the writer's neighbour thread while the messages before them go out.
        reader = blobs.thread_reader()
        raws = {m.id: self.reader.submit(reader, m.raw_sha256) for m in rows.values()} if reader else {}
        # The DATA marks, a window ahead: ``marking[id]`` is the writer's job whose commit marks ``id``.
        order = [i for i in ids if i in rows]
        marking: dict[int, Future[set[int]]] = {}
        marked_upto = 0  # positions in ``order`` whose mark is committed or on its way
        for position, message_id in enumerate(order):
            if position >= marked_upto - MARK_WINDOW // 2:
                window = order[max(marked_upto, position) : max(marked_upto, position) + MARK_WINDOW]
                job = self._write_beside(window)
                marking.update(dict.fromkeys(window, job))
                marked_upto = max(marked_upto, position) + len(window)
            if not self._send_one(session, rows[message_id], marking[message_id], raws.get(message_id)):
                self._release(order[position + 1 :])
                return False
        return True

    def _snapshots(self, ids: Sequence[int]) -> list[_Claimed]:
        query = select(
            EmailMessage.id,
            EmailMessage.raw_sha256,
            EmailMessage.envelope,
            EmailMessage.accepted,
            EmailMessage.attempts,
        ).where(EmailMessage.id.in_(ids), EmailMessage.lease_owner == self.owner)
        rows = [
            _Claimed(row.id, row.raw_sha256, tuple(row.envelope or ()), tuple(row.accepted or ()), row.attempts)
            for row in db.session.execute(query)
        ]
        db.session.commit()  # end the read: the writes below take the write lock themselves
        return rows

    def _send_one(
        self,
        session: smtp.SmtpSession,
        message: _Claimed,
        marking: Future[set[int]],
        raw_read: Future[bytes] | None = None,
    ) -> bool:
        """Send one message; False when the connection broke."""
        accepted = list(message.accepted or [])
        recipients = [r for r in (message.envelope or []) if r not in accepted]
        attempts = message.attempts + 1
        in_data = False
        # The message's DATA mark is committed by the writer thread (``marking``), normally long before it
        # is needed; the content waits for that commit. (Should every recipient be refused, the mark stands
        # until the outcome is written: a worker killed in between leaves it "possibly sent" although it
        # was not — over-cautious, never a double send.)

        def before_data() -> None:
            nonlocal in_data
            if message.id not in marking.result():
                raise LeaseLost(message.id)  # not ours any more: the content is not sent (handled below)
            in_data = True
            self.failpoints.hit("send_data")

        try:
            raw = raw_read.result() if raw_read is not None else blobs.get(message.raw_sha256)
            report = session.send(self.sender, recipients, raw, before_data=before_data)
        except LeaseLost:
            # The sweep gave it to another worker while this one was busy: not ours to send. (A pipelined
            # DATA was already answered 354: the session closed the connection to leave it.)
            return session.open
        except smtp.RecipientsRefused as exc:
            if not _ours(marking, message.id):
                return session.open  # no longer ours (see LeaseLost)
            reason = f"Outgoing server: {exc}"
            if exc.report.refused and all(r.transient for r in exc.report.refused):
                self._retry_or_fail(message, accepted, attempts, reason)
            else:
                self._fail(message, accepted, attempts, reason)
            return session.open  # closed after a 421: the server is leaving
        except AdapterError as exc:
            if not _ours(marking, message.id):
                return session.open  # no longer ours (see LeaseLost)
            reason = f"Outgoing server: {exc}"
            broken = exc.kind in ("timeout", "reset", "network", "tls") or not _is_reply(exc)
            if in_data and broken:
                # The message was handed over and the answer never came: the server may have it.
                self._fail(message, accepted, attempts, f"{reason}; {POSSIBLY_SENT}", possibly_sent=True)
            elif isinstance(exc, PermanentError) and not broken:
                self._fail(message, accepted, attempts, reason)
            else:
                self._retry_or_fail(message, accepted, attempts, reason)
            return not broken and session.open
        except blobs.BlobMissing:
            if not _ours(marking, message.id):
                return True  # no longer ours (see LeaseLost)
            self._fail(message, accepted, attempts, "the message's stored bytes are missing")
            return True
        finally:
            futures.wait([marking])  # never two writers at once, whatever happened
        self.last_send = time.monotonic()
        accepted += list(report.accepted)
        if report.refused:
            reason = f"Outgoing server refused some recipients: {report.describe_refusals()}"
            if all(r.transient for r in report.refused):
                self._retry_or_fail(message, accepted, attempts, reason)
            else:
                self._fail(message, accepted, attempts, reason)
            return True
        self.pending.append(_Outcome(message.id, MessageStatus.SENT, accepted, attempts, sent_at=utcnow()))
        self.result.sent += 1
        if self.copy_to_sent:
            self.sent_copies.append(message.raw_sha256)
        return True

    def _retry_or_fail(self, message: _Claimed, accepted: list[str], attempts: int, reason: str) -> None:
        if attempts >= self.max_attempts:
            self._fail(message, accepted, attempts, f"{reason} (after {attempts} attempts)")
            return
        retry_at = (self.now or utcnow()) + backoff(attempts)
        self.pending.append(
            _Outcome(message.id, MessageStatus.QUEUED, accepted, attempts, reason, next_attempt_at=retry_at)
        )
        self.result.retrying += 1

    def _fail(
        self, message: _Claimed, accepted: list[str], attempts: int, reason: str, *, possibly_sent: bool = False
    ) -> None:
        self.pending.append(
            _Outcome(message.id, MessageStatus.FAILED, accepted, attempts, reason, possibly_sent=possibly_sent)
        )
        self.result.failed += 1
        self.result.errors.append(reason)
        self.log_entries.append((reason, f"message={message.id}; attempts={attempts}"))

    def _connection_failed(self, ids: Sequence[int], reason: str, exc: AdapterError) -> None:
        """No session: each claimed message used an attempt (the account's settings may be wrong)."""
        self.log_entries.append((reason, errorlog.detail_of(exc)))
        for message in self._snapshots(ids):
            attempts = message.attempts + 1
            if attempts >= self.max_attempts:
                self.pending.append(
                    _Outcome(
                        message.id,
                        MessageStatus.FAILED,
                        list(message.accepted or []),
                        attempts,
                        f"{reason} (after {attempts} attempts)",
                    )
                )
                self.result.failed += 1
            else:
                retry_at = (self.now or utcnow()) + backoff(attempts)
                self.pending.append(
                    _Outcome(
                        message.id,
                        MessageStatus.QUEUED,
                        list(message.accepted or []),
                        attempts,
                        reason,
                        next_attempt_at=retry_at,
                    )
                )
                self.result.retrying += 1
        self.result.errors.append(reason)

    def _release(self, ids: Sequence[int]) -> None:
        """Give back claimed messages not tried (no attempt used)."""
        self._flush()
        if not ids:
            return
        with write_transaction():
            db.session.execute(
                update(EmailMessage)
                .where(EmailMessage.id.in_(ids), EmailMessage.lease_owner == self.owner)
                .values(status=MessageStatus.QUEUED, lease_owner=None, lease_until=None, send_stage=None)
                .execution_options(synchronize_session=False)
            )
            db.session.commit()

    def _pace(self) -> None:
        """Keep to the account's rate limit (messages per minute, shared by its connections)."""
        if self.interval and self.last_send:
            wait = self.last_send + self.interval - time.monotonic()
            if wait > 0:
                time.sleep(wait)

    def _write_beside(self, mark_data: Sequence[int]) -> Future[set[int]]:
        """Start writing the waiting outcomes and the DATA marks of ``mark_data`` in the writer thread, on a
        connection of its own; the job's result is the ids marked (those still ours). Error-log entries
        (rare: failures) are written first, here."""
        if self.log_entries:
            self._flush()
        outcomes, self.pending = self.pending, []
        return self.writer.submit(self._flush_beside, outcomes, list(mark_data))

    def _flush_beside(self, outcomes: list[_Outcome], mark_data: list[int]) -> set[int]:
        for attempt in range(STORE_RETRIES):
            try:
                self.failpoints.hit("send_record")
                if self.writer_connection is None:
                    self.writer_connection = self.engine.connect()
                with write_on(self.writer_connection) as connection:
                    if outcomes:
                        connection.execute(_RECORD, [self._params(outcome) for outcome in outcomes])
                    marked = set(connection.scalars(_MARK_DATA, {"ids": mark_data, "b_owner": self.owner}))
                    self._renew_lease(connection)
                return marked
            except (SQLAlchemyError, FailPoint):
                self._close_writer_connection()  # a broken connection is not reused: the retry opens another
                if attempt == STORE_RETRIES - 1:
                    log.exception("outbox: recording what the SMTP server did failed")
                    self.pending[:0] = outcomes  # for the Error-log entry of the final flush
                    raise
                time.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _close_writer_connection(self) -> None:
        if self.writer_connection is not None:
            connection, self.writer_connection = self.writer_connection, None
            try:
                connection.close()
            except SQLAlchemyError:
                log.warning("outbox: closing the writer's database connection failed", exc_info=True)

    def _renew_lease(self, connection: Connection) -> None:
        if time.monotonic() - self.lease_renewed > self.lease / 5:
            until = utcnow() + timedelta(seconds=self.lease)
            connection.execute(_RENEW, {"b_owner": self.owner, "until": until})
            self.lease_renewed = time.monotonic()
            if self.renew_slot is not None:
                self.renew_slot()

    def _flush(self) -> None:
        """Write the outcomes (and Error-log entries) waiting, in one commit. The server
        has already acted on these outcomes: a failing database is retried, then the Error logs say so
        (the lease then expires and the sweep marks the message possibly sent: never sent twice)."""
        if not self.pending and not self.log_entries:
            return
        for attempt in range(STORE_RETRIES):
            try:
                self._write()
            except (SQLAlchemyError, FailPoint) as exc:
                db.session.rollback()
                if attempt == STORE_RETRIES - 1:
                    log.exception("outbox: recording what the SMTP server did failed")
                    self._record_store_failure(exc)
                    raise
                time.sleep(0.2 * 2**attempt)
            else:
                self.pending.clear()
                self.log_entries.clear()
                return

    def _write(self) -> None:
        self.failpoints.hit("send_record")
        with write_transaction():
            # The session's connection, not the session: no ORM bookkeeping for statements run per message.
            connection = db.session.connection()
            if self.pending:
                connection.execute(_RECORD, [self._params(outcome) for outcome in self.pending])
            for reason, detail in self.log_entries:
                errorlog.add(self.account_id, "send", reason, detail)
            self._renew_lease(connection)
            db.session.commit()

    def _params(self, outcome: _Outcome) -> dict[str, object]:
        sent = outcome.status == MessageStatus.SENT
        return {
            "b_id": outcome.message_id,
            "b_owner": self.owner,
            "status": str(outcome.status),
            "accepted": outcome.accepted,
            "attempts": outcome.attempts,
            "last_error": outcome.last_error,
            "next_attempt_at": outcome.next_attempt_at,
            "possibly_sent": outcome.possibly_sent and not sent,
            "sent_at": outcome.sent_at if sent else None,
            "folder": SENT_FOLDER if sent else OUTBOX_FOLDER,
        }

    def _record_store_failure(self, exc: Exception) -> None:
        sent = [o.message_id for o in self.pending if o.status == MessageStatus.SENT]
        try:
            errorlog.record(
                self.account,
                "send",
                "the server took the message(s) but recording that failed; they are not sent again "
                f"(the sweep marks them possibly sent): {type(exc).__name__}",
                detail=f"messages={sent or [o.message_id for o in self.pending]}",
            )
        except Exception:  # the database is what failed; the log line above remains
            log.exception("outbox: the Error logs could not be written either")


def _ours(marking: Future[set[int]], message_id: int) -> bool:
    """Wait for the writer's job that marks ``message_id``; False when it turned out not to be ours any more."""
    return message_id in marking.result()


def _is_reply(exc: AdapterError) -> bool:
    """Did the server answer (a 4xx/5xx reply), as opposed to the connection failing?"""
    return exc.kind in ("protocol", "recipients", "smtputf8", "auth")
