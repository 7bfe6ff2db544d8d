"""Fetching the latest N messages of an account (IMAP or POP3) into the database, idempotently.

IMAP opens the folder with EXAMINE and reads ``BODY.PEEK[]``; POP3 never sends DELE: fetching changes
nothing on the server. A message already stored (same folder, UIDVALIDITY and UID; or same UIDL) is
skipped, so running a fetch twice stores nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.adapters import imap, pop3
from webapp.adapters.errors import AdapterError
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage
from webapp.services import accounts, errorlog, messages
from webapp.services.errors import ConnectionFailed

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
BATCH_SIZE = 50
T = TypeVar("T")


@dataclass
class FetchSummary:
    stored: int = 0
    skipped: int = 0
    quarantined: int = 0  # stored raw, with the reason it could not be parsed
    failed: int = 0  # listed by the server but gone by the time it was fetched
    total: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def fetch_latest(account: EmailAccount, progress: Progress | None = None) -> FetchSummary:
    """Fetch the account's latest N messages; failures go to the Error logs and raise ConnectionFailed."""
    report = progress or (lambda done, total: None)
    try:
        if account.incoming_protocol == "imap":
            return _fetch_imap(account, report)
        return _fetch_pop3(account, report)
    except AdapterError as exc:
        db.session.rollback()
        reason = f"Incoming server: {exc}"
        errorlog.record(account, "fetch", reason, detail=f"kind={exc.kind}")
        raise ConnectionFailed(reason, exc.kind) from None


@dataclass(frozen=True)
class _Item:
    origin: messages.Origin
    raw: bytes = field(repr=False)
    seen: bool = False
    flags: tuple[str, ...] = ()
    arrived_at: datetime | None = None


def _fetch_imap(account: EmailAccount, report: Progress) -> FetchSummary:
    summary = FetchSummary()
    with imap.session(accounts.incoming_endpoint(account), accounts.credentials(account)) as client:
        folder = imap.examine(client, account.folder)
        wanted = imap.all_uids(client)[-account.fetch_count :]
        known = _known_uids(account, folder.name, folder.uidvalidity, wanted)
        todo = [uid for uid in wanted if uid not in known]
        summary.total = len(wanted)
        summary.skipped = len(wanted) - len(todo)
        report(summary.skipped, summary.total)
        for batch in _chunks(todo, BATCH_SIZE):
            fetched = imap.fetch_messages(client, batch)
            summary.failed += len(batch) - len(fetched)
            items = [
                _Item(messages.Origin(folder.name, folder.uidvalidity, m.uid), m.raw, m.seen, m.flags, m.internal_date)
                for m in fetched
            ]
            _store_batch(account, items, summary)
            report(summary.skipped + summary.stored + summary.failed, summary.total)
    return summary


def _fetch_pop3(account: EmailAccount, report: Progress) -> FetchSummary:
    summary = FetchSummary()
    with pop3.session(accounts.incoming_endpoint(account), accounts.credentials(account)) as client:
        wanted = pop3.uidls(client)[-account.fetch_count :]
        known = _known_uidls(account, [uidl for _number, uidl in wanted])
        todo = [(number, uidl) for number, uidl in wanted if uidl not in known]
        summary.total = len(wanted)
        summary.skipped = len(wanted) - len(todo)
        report(summary.skipped, summary.total)
        for batch in _chunks(todo, BATCH_SIZE):
            items = [
                _Item(messages.Origin("INBOX", uidl=uidl), pop3.retrieve(client, number)) for number, uidl in batch
            ]
            _store_batch(account, items, summary)
            report(summary.skipped + summary.stored, summary.total)
    return summary


def _store_batch(account: EmailAccount, items: Sequence[_Item], summary: FetchSummary) -> None:
    """Add and commit ``items``; if a concurrent fetch stored some first, store only the others."""
    for _attempt in range(3):
        added = [_add(account, item) for item in items]
        try:
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            fresh = _unstored(account, items)
            summary.skipped += len(items) - len(fresh)
            items = fresh
            log.info("account %s: a concurrent fetch stored part of a batch first", account.name)
            continue
        summary.stored += len(added)
        summary.quarantined += sum(1 for message in added if message.parse_error is not None)
        return
    summary.failed += len(items)


def _add(account: EmailAccount, item: _Item) -> EmailMessage:
    return messages.add(account, item.origin, item.raw, seen=item.seen, flags=item.flags, arrived_at=item.arrived_at)


def _unstored(account: EmailAccount, items: Sequence[_Item]) -> list[_Item]:
    if not items:
        return []
    first = items[0].origin
    if first.uidl is not None:
        known_uidls = _known_uidls(account, [i.origin.uidl or "" for i in items])
        return [i for i in items if i.origin.uidl not in known_uidls]
    known = _known_uids(account, first.folder, first.uidvalidity or 0, [i.origin.uid or 0 for i in items])
    return [i for i in items if i.origin.uid not in known]


def _known_uids(account: EmailAccount, folder: str, uidvalidity: int, uids: Sequence[int]) -> set[int]:
    known: set[int] = set()
    for batch in _chunks(list(uids), 500):
        known.update(
            uid
            for uid in db.session.scalars(
                select(EmailMessage.uid).where(
                    EmailMessage.account_id == account.id,
                    EmailMessage.folder == folder,
                    EmailMessage.uidvalidity == uidvalidity,
                    EmailMessage.uid.in_(batch),
                )
            )
            if uid is not None
        )
    return known


def _known_uidls(account: EmailAccount, uidls: Sequence[str]) -> set[str]:
    known: set[str] = set()
    for batch in _chunks(list(uidls), 500):
        known.update(
            uidl
            for uidl in db.session.scalars(
                select(EmailMessage.uidl).where(EmailMessage.account_id == account.id, EmailMessage.uidl.in_(batch))
            )
            if uidl is not None
        )
    return known


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
