"""The outbox: queueing messages, the Drafts/Queued/Sent/Failed lists, retry and cancel, one sending pass.

A queued message is built once, at enqueue: its bytes (and so its Message-ID) are what every attempt
sends. Sending is :mod:`delivery`'s job; a worker is nudged at once, and the schedule (or ``send-queued``)
drains whatever is due.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError

from webapp.adapters.mime import addresses
from webapp.database import write_transaction
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage
from webapp.models.base import MAX_ID, utcnow
from webapp.models.message import MessageStatus
from webapp.services.errors import ConnectorError, Invalid, NotFound
from webapp.services.outgoing import delivery
from webapp.services.outgoing.sending import Draft, build
from webapp.services.platform import blobs, queues
from webapp.services.platform.redisconn import coordination
from webapp.services.receiving import store

log = logging.getLogger(__name__)

# Drafts and queued mail are the app's own: no server folder has an empty name.
OUTBOX_FOLDER = delivery.OUTBOX_FOLDER
SEND_JOB = "jobs.send.send_account"
LIST_STATUSES = ("draft", "queued", "sending", "sent", "failed")
MAX_KEY_LENGTH = 200


def enqueue(
    account: EmailAccount,
    draft: Draft,
    *,
    send_after: datetime | None = None,
    key: str | None = None,
    nudge_worker: bool = True,
) -> EmailMessage:
    """Queue ``draft`` (built now; every attempt sends these bytes). ``key``: a second enqueue with the
    same key for the account returns the first message instead (Conflict never: re-running a file is safe)."""
    if send_after is not None and send_after.tzinfo is None:
        raise Invalid("send after: give a time with its zone (e.g. 2026-12-24T09:00:00+01:00)")
    if send_after is not None:
        try:
            send_after = send_after.astimezone(UTC)
        except OverflowError:
            raise Invalid("send after: out of range") from None
        if not 2000 <= send_after.year <= 9000:
            raise Invalid("send after: out of range (years 2000 to 9000)")
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        raise Invalid(f"key: 1 to {MAX_KEY_LENGTH} characters")
    message, raw = build(account, draft)
    queued = _insert(account, raw, message.recipients, _bcc(message.bcc), send_after, key)
    if nudge_worker:
        nudge(account)
    return queued


def enqueue_many(account: EmailAccount, items: Sequence[tuple[Draft, str | None]]) -> tuple[int, int]:
    """Queue every draft, or none: each is built first (Invalid names the 1-based position of a bad one),
    then all go in one transaction. A draft whose key was queued before is skipped. (queued, skipped)."""
    built = []
    # The files of the blob store are created by threads while the next drafts are built (creating a
    # file costs about what building a small message does); the rows below touch them again, so a
    # garbage collection between the two spares them (or they are written anew).
    writer = blobs.thread_writer()
    with futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="outbox-blobs") as pool:
        writes = []
        for number, (draft, key) in enumerate(items, start=1):
            if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
                raise Invalid(f"line {number}: key: 1 to {MAX_KEY_LENGTH} characters")
            try:
                message, raw = build(account, draft)
            except ConnectorError as exc:
                raise Invalid(f"line {number}: {exc}") from None
            built.append((message, raw, key))
            if writer is not None:
                writes.append(pool.submit(writer, raw))
        for write in writes:
            write.result()  # a full disk is an error before anything is queued
    with write_transaction():
        known = set(_known_keys(account, [key for _m, _r, key in built if key is not None]))
        rows = []
        for message, raw, key in built:
            if key is not None and key in known:
                continue
            if key is not None:
                known.add(key)
            rows.append(_queued_row(raw, message.recipients, _bcc(message.bcc), key))
        # One multi-row INSERT, headers read by our own reader; bodies are parsed later (the message page,
        # or the drain once its mail is out), as for fetched mail.
        store.insert_received(account, rows)
        db.session.commit()
    queued, skipped = len(rows), len(built) - len(rows)
    if queued:
        nudge(account)
    return queued, skipped


def _queued_row(raw: bytes, recipients: list[str], bcc: tuple[str, ...], key: str | None) -> dict[str, Any]:
    row = store.prepare_received(store.Received(store.Origin(OUTBOX_FOLDER), raw, seen=True), 0, _put_later)
    row.update(
        status=MessageStatus.QUEUED,
        envelope=recipients,
        accepted=[],
        queue_key=key,
        send_after=None,
        bcc=[{"name": "", "address": a} for a in bcc],
    )
    return row


def _put_later(data: bytes) -> str:
    return blobs.put(data, durable=False)  # insert_received flushes the blob store once for the batch


def _known_keys(account: EmailAccount, keys: Sequence[str]) -> list[str]:
    found: list[str] = []
    for start in range(0, len(keys), 500):
        query = select(EmailMessage.queue_key).where(
            EmailMessage.account_id == account.id, EmailMessage.queue_key.in_(keys[start : start + 500])
        )
        found.extend(k for k in db.session.scalars(query) if k is not None)
    return found


def _bcc(values: Sequence[object]) -> tuple[str, ...]:
    return tuple(m.address if isinstance(m, addresses.Mailbox) else str(m) for m in values)


def _insert(
    account: EmailAccount,
    raw: bytes,
    recipients: list[str],
    bcc: tuple[str, ...],
    send_after: datetime | None,
    key: str | None,
) -> EmailMessage:
    with write_transaction():
        if key is not None:
            existing = db.session.scalar(
                select(EmailMessage).where(EmailMessage.account_id == account.id, EmailMessage.queue_key == key)
            )
            if existing is not None:
                return existing
        queued = store.add(account, store.Origin(OUTBOX_FOLDER), raw, status=MessageStatus.QUEUED, seen=True, bcc=bcc)
        queued.envelope = recipients
        queued.accepted = []
        queued.send_after = send_after
        queued.queue_key = key
        db.session.commit()
        return queued


def nudge(account: EmailAccount) -> None:
    """Ask a worker to drain the account now (one job per connection slot); without Redis or a worker,
    the schedule or ``send-queued`` sends it later: the database holds the queue."""
    try:
        if not coordination().put(f"outbox:nudged:{account.id}", "1", 30, only_if_new=True):
            return  # a job is queued already and has not started
        for _slot in range(max(1, account.send_connections)):
            queues.queue(queues.SEND).enqueue(
                SEND_JOB,
                account.id,
                job_timeout=3600,
                result_ttl=600,
                failure_ttl=86400,
                description=f"send queued mail of {account.name}",
            )
    except Exception as exc:  # noqa: BLE001 - best effort: the schedule picks it up
        # Info: a command's one line of output is its own (a Redis that is down says so there).
        log.info("account %s: no worker nudged for queued mail (%s); the schedule will send it", account.name, exc)


def started_draining(account_id: int) -> None:
    """A send job began: the next message queued nudges a new one."""
    try:
        coordination().delete(f"outbox:nudged:{account_id}")
    except Exception:  # noqa: BLE001 - the marker expires by itself
        pass


@dataclass
class PassResult:
    """One sending pass over every account with due mail."""

    requeued: int = 0  # expired leases put back
    possibly_sent: int = 0  # expired leases past DATA, marked
    accounts: int = 0
    result: delivery.DrainResult | None = None


def send_queued(limit: int | None = None, now: datetime | None = None) -> PassResult:
    """One pass: sweep expired leases, then drain every account with due mail (one connection each)."""
    outcome = PassResult()
    outcome.requeued, outcome.possibly_sent = delivery.sweep(now)
    total = delivery.DrainResult()
    for account_id in delivery.due_accounts(now):
        account = db.session.get(EmailAccount, account_id)
        if account is None:
            continue
        outcome.accounts += 1
        drained = delivery.drain(account, limit=limit, now=now)
        total.add(drained)
        if drained.sent:
            complete_bodies(account)
    outcome.result = total
    return outcome


def complete_bodies(account: EmailAccount) -> None:
    """Parse the bodies of mail queued in bulk (stored with its headers only) once it is out, off the
    sending path; the message page does it for one message when it is opened first."""
    store.complete_pending(account)


def _status(name: str) -> MessageStatus:
    if name.lower() not in LIST_STATUSES:
        raise Invalid(f"status: one of {', '.join(LIST_STATUSES)}")
    return MessageStatus(name.upper())


def listing(account: EmailAccount, status: str, *, before: int | None = None, limit: int = 50) -> list[EmailMessage]:
    """The account's outgoing messages in ``status`` (draft, queued, sending, sent, failed), newest first;
    ``before``: the last id of the previous page."""
    wanted = _status(status)
    query = select(EmailMessage).where(EmailMessage.account_id == account.id, EmailMessage.status == wanted)
    if wanted == MessageStatus.SENT:
        query = query.where(EmailMessage.uid.is_(None), EmailMessage.uidl.is_(None))
    if before is not None and 0 < before <= MAX_ID:
        query = query.where(EmailMessage.id < before)
    return list(db.session.scalars(query.order_by(EmailMessage.id.desc()).limit(limit)))


def counts(account_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per account: how many messages are queued (with those being sent) and failed."""
    result: dict[int, dict[str, int]] = {i: {"queued": 0, "failed": 0, "draft": 0} for i in account_ids}
    if not account_ids:
        return result
    wanted = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.FAILED, MessageStatus.DRAFT)
    query = (
        select(EmailMessage.account_id, EmailMessage.status, func.count())
        .where(EmailMessage.account_id.in_(account_ids), EmailMessage.status.in_(wanted))
        .group_by(EmailMessage.account_id, EmailMessage.status)
    )
    for account_id, status, number in db.session.execute(query):
        key = "failed" if status == MessageStatus.FAILED else "draft" if status == MessageStatus.DRAFT else "queued"
        result[account_id][key] += number
    return result


def get(account: EmailAccount | None, message_id: int) -> EmailMessage:
    """An outgoing message (of ``account`` when given); NotFound otherwise."""
    try:
        message = db.session.get(EmailMessage, message_id) if 0 < message_id <= MAX_ID else None
    except DBAPIError:  # an id the database's column cannot hold (PostgreSQL: integer out of range)
        db.session.rollback()
        message = None
    if message is None or message.status == MessageStatus.RECEIVED or (account and message.account_id != account.id):
        raise NotFound(f"no outgoing message {message_id}")
    return message


def retry(account: EmailAccount | None, message_ids: Sequence[int] = (), *, all_failed: bool = False) -> int:
    """Put FAILED messages back in the queue with fresh attempts (those the server accepted for some
    recipients go only to the others); how many. ``all_failed``: every failed one (of ``account``)."""
    if not all_failed:
        for message_id in message_ids:
            if get(account, message_id).status != MessageStatus.FAILED:
                raise Invalid(f"message {message_id} has not failed: only failed messages are retried")
    query = update(EmailMessage).where(EmailMessage.status == MessageStatus.FAILED)
    if account is not None:
        query = query.where(EmailMessage.account_id == account.id)
    if not all_failed:
        query = query.where(EmailMessage.id.in_(list(message_ids)))
    with write_transaction():
        changed = db.session.execute(
            query.values(
                status=MessageStatus.QUEUED, attempts=0, next_attempt_at=None, possibly_sent=False, folder=OUTBOX_FOLDER
            ).execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        db.session.commit()
    if changed:
        for account_id in _accounts_with(MessageStatus.QUEUED, account):
            nudged = db.session.get(EmailAccount, account_id)
            if nudged is not None:
                nudge(nudged)
    return changed or 0


def _accounts_with(status: MessageStatus, account: EmailAccount | None) -> list[int]:
    if account is not None:
        return [account.id]
    return list(db.session.scalars(select(EmailMessage.account_id).where(EmailMessage.status == status).distinct()))


def cancel(account: EmailAccount | None, message_id: int) -> EmailMessage:
    """Take a queued (or failed) message out of the queue: it becomes a draft. One being sent right now
    cannot be stopped (Invalid)."""
    message = get(account, message_id)
    if message.accepted:
        raise Invalid(
            f"message {message_id} already went to {', '.join(message.accepted)}: a draft of it would be sent to "
            "them again; Retry it instead (only the others get it)"
        )
    # Bulk-queued mail has only its headers parsed: the draft needs the bodies and attachments.
    store.complete(message)
    with write_transaction():
        changed = db.session.execute(
            update(EmailMessage)
            .where(
                EmailMessage.id == message.id,
                EmailMessage.status.in_((MessageStatus.QUEUED, MessageStatus.FAILED)),
            )
            .values(status=MessageStatus.DRAFT, next_attempt_at=None, send_after=None)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        db.session.commit()
    db.session.refresh(message)
    if not changed:
        raise Invalid(
            f"message {message_id} is {message.status.lower()}: only queued or failed messages can be cancelled"
        )
    return message


def send_now(account: EmailAccount) -> int:
    """*Send queued now*: every queued message of the account is due at once; a worker is nudged."""
    with write_transaction():
        changed = db.session.execute(
            update(EmailMessage)
            .where(EmailMessage.account_id == account.id, EmailMessage.status == MessageStatus.QUEUED)
            .values(next_attempt_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        db.session.commit()
    nudge(account)
    return changed or 0


def due_now(now: datetime | None = None) -> bool:
    """Is any queued message due?"""
    return bool(delivery.due_accounts(now or utcnow()))
