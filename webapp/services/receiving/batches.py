"""A fetch's batches: each stored with its folder's checkpoint in one transaction, so a crash at any point,
then a rerun, stores every message exactly once (the unique keys of design §4 back that up); progress,
cancelling, and what a fetch reports (FetchSummary)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.adapters.storage import blobstore
from webapp.adapters.storage.blobstore import FolderBlobStore
from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage, FolderState
from webapp.models.message import BodyState
from webapp.services.errors import ConnectorError, NotFound
from webapp.services.platform import blobs
from webapp.services.platform.failpoints import FailPoints
from webapp.services.receiving import fetchlock, store

log = logging.getLogger(__name__)

T = TypeVar("T")
FETCH_BYTES = 8 * 1024 * 1024
BATCH_BYTES = 16 * 1024 * 1024
# After storing this many messages the database's planner statistics are refreshed at once: with stale
# ones PostgreSQL walked 100,000 rows for a search that matches thirty (autovacuum comes later).
ANALYZE_AFTER = 2000


@dataclass
class FetchProgress:
    done: int = 0
    total: int = 0
    batch: int = 0
    folder: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Messages per second so far."""
        elapsed = time.monotonic() - self.started
        return self.done / elapsed if elapsed > 0 else 0.0


Progress = Callable[[FetchProgress], None]
CancelCheck = Callable[[], bool]


class BatchListener(Protocol):
    """Told about each stored batch inside its transaction (before the commit): the ids stored and a key
    that names the batch the same way in every rerun."""

    def in_transaction(self, account: EmailAccount, ids: Sequence[int], key: str) -> None:
        """Called in the batch's transaction with the ids stored and the batch's ``key``."""
        ...


class Cancelled(ConnectorError):
    """The fetch was cancelled between two batches; everything stored so far stays."""


class AccountRemoved(NotFound):
    """The account was removed while it was being fetched (and everything stored for it with it)."""


def account_exists(account_id: int) -> bool:
    """Does the account still exist (a fetch stops when it was removed meanwhile)?"""
    return db.session.scalar(select(EmailAccount.id).where(EmailAccount.id == account_id)) is not None


@dataclass
class FetchSummary:
    stored: int = 0
    skipped: int = 0
    quarantined: int = 0  # stored raw: it could not be parsed, or it was over the size limit
    failed: int = 0  # listed by the server but gone by the time it was fetched
    total: int = 0  # the messages this fetch looked at (latest N: at most N per folder)
    total_on_server: int = 0  # every message in the fetched folders
    relinked: int = 0  # already stored, found again under a new UIDVALIDITY
    cancelled: bool = False

    def as_dict(self) -> dict[str, int]:
        """The counts as ints (``cancelled`` as 0 or 1), for the job's result, events and ``--json``."""
        values = asdict(self)
        values["cancelled"] = int(self.cancelled)
        return values


@dataclass(frozen=True)
class Item:
    """A fetched message, its raw bytes in the blob store (not flushed yet), its row ready to insert."""

    origin: store.Origin
    row: dict[str, object] = field(repr=False)

    @property
    def digest(self) -> str:
        """The SHA-256 of the message's raw bytes (its blob)."""
        return str(self.row["raw_sha256"])

    @property
    def oversize(self) -> bool:
        """Was the message over the size limit (only its headers fetched)?"""
        return self.row["body_state"] == BodyState.OVERSIZE


class NoListener:
    def in_transaction(self, account: EmailAccount, ids: Sequence[int], key: str) -> None:
        """Do nothing: a fetch with no events to record."""
        pass


class BatchRun:
    """What every fetch does with its batches: store each with its checkpoint in one transaction, re-link
    messages after a UIDVALIDITY change, report progress, stop when cancelled or the account is gone."""

    def __init__(
        self,
        account: EmailAccount,
        progress: Progress | None,
        cancelled: Callable[[], bool] | None,
        listener: BatchListener,
        lock: fetchlock.Held,
        failpoints: FailPoints,
    ) -> None:
        self.account = account
        self.account_id = account.id
        self.report = progress or (lambda p: None)
        self.cancelled = cancelled or (lambda: False)
        self.listener = listener
        self.lock = lock
        self.failpoints = failpoints
        self.summary = FetchSummary()
        self.progress = FetchProgress()
        self._stale: dict[str, bool] = {}
        # Read once: the download thread must not touch the database (an expired attribute would).
        self.max_size = account.max_message_size
        self.pending_action = account.after_fetch if account.after_fetch != "none" else None
        root = blobs.folder_root()
        self.folder = FolderBlobStore(root) if root is not None else None
        self._database_blobs: dict[str, bytes] = {}  # blobs for the database, stored with their batch

    def _prepared(self, received: store.Received) -> Item:
        return Item(received.origin, store.prepare_received(received, self.max_size or 0, self._put))

    def _put(self, data: bytes) -> str:
        """Blobs are flushed once per batch (insert_received), before the rows naming them are committed.
        In the database they wait for the batch's write transaction (:meth:`_store`)."""
        if self.folder is not None:
            return self.folder.put(data, durable=False)  # any thread
        digest = blobstore.sha256(data)
        self._database_blobs[digest] = data
        return digest

    @writes
    def _store(self, items: Sequence[Item], state: FolderState | None, last_uid: int, key: str) -> list[int]:
        """Store ``items`` and the checkpoint in one transaction; return the ids stored. Their bodies are
        parsed after the download (complete_pending): parsing meanwhile took the CPU the download needs."""
        for _attempt in range(3):
            for data in self._database_blobs.values():
                blobs.put(data, durable=False)
            relinked = self._relink(items, state) if state is not None and self._has_stale(state) else set()
            fresh = [item for item in items if item.origin.uid not in relinked]
            ids = store.insert_received(self.account, [item.row for item in fresh])
            if state is not None:
                state.last_uid = max(state.last_uid, last_uid)
            if ids:
                self.listener.in_transaction(self.account, ids, key)
            self.failpoints.hit("before_commit")
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                if not account_exists(self.account_id):
                    raise AccountRemoved("the account was removed while it was being fetched") from None
                left = unstored(self.account, items)
                self.summary.skipped += len(items) - len(left)
                items = left
                log.info("account %s: part of a batch was stored by someone else first", self.account.name)
                continue
            self.failpoints.hit("after_commit")
            self._database_blobs.clear()
            self.lock.refresh()
            self.summary.stored += len(ids)
            self.summary.relinked += len(relinked)
            self.summary.skipped += len(relinked)
            self.summary.quarantined += sum(1 for i in fresh if i.oversize)
            return ids
        self.summary.failed += len(items)
        return []

    def _has_stale(self, state: FolderState) -> bool:
        """Are messages of this folder stored under another UIDVALIDITY (the server renumbered it)?"""
        cached = self._stale.get(state.folder)
        if cached is None:
            query = select(EmailMessage.id).where(
                EmailMessage.account_id == self.account.id,
                EmailMessage.folder == state.folder,
                EmailMessage.uidvalidity != state.uidvalidity,
            )
            cached = self._stale[state.folder] = db.session.scalar(query.limit(1)) is not None
        return cached

    def _relink(self, items: Sequence[Item], state: FolderState) -> set[int]:
        """After a UIDVALIDITY change: the same bytes stored under the old numbering get the new UID."""
        by_digest = {i.digest: i for i in items if not i.oversize}
        stale = db.session.scalars(
            select(EmailMessage).where(
                EmailMessage.account_id == self.account.id,
                EmailMessage.folder == state.folder,
                EmailMessage.uidvalidity != state.uidvalidity,
                EmailMessage.raw_sha256.in_(list(by_digest)),
            )
        )
        relinked: set[int] = set()
        for message in stale:
            item = by_digest.pop(message.raw_sha256, None)
            if item is not None:  # two stored copies of the same bytes: re-link one, keep the other as is
                message.uidvalidity, message.uid = item.origin.uidvalidity, item.origin.uid
                relinked.add(item.origin.uid or 0)
        return relinked

    def _advance(self, count: int) -> None:
        self.progress.done += count
        self.progress.batch += 1
        self.report(self.progress)

    def _check_cancel(self) -> None:
        if self.cancelled():
            raise Cancelled("the fetch was cancelled")
        if not account_exists(self.account_id):
            raise AccountRemoved("the account was removed while it was being fetched")


def known_uids(account: EmailAccount, folder: str, uidvalidity: int, uids: Sequence[int]) -> set[int]:
    """Those of ``uids`` already stored for ``folder`` under ``uidvalidity`` (asked 500 at a time)."""
    known: set[int] = set()
    for batch in chunks(list(uids), 500):
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


def known_uidls(account: EmailAccount, uidls: Sequence[str]) -> set[str]:
    """Those of ``uidls`` already stored for the account (asked 500 at a time)."""
    known: set[str] = set()
    for batch in chunks(list(uidls), 500):
        known.update(
            uidl
            for uidl in db.session.scalars(
                select(EmailMessage.uidl).where(EmailMessage.account_id == account.id, EmailMessage.uidl.in_(batch))
            )
            if uidl is not None
        )
    return known


def unstored(account: EmailAccount, items: Sequence[Item]) -> list[Item]:
    """The ``items`` not stored yet: by UIDL for POP3, else by folder, UIDVALIDITY and UID."""
    if not items:
        return []
    first = items[0].origin
    if first.uidl is not None:
        stored_uidls = known_uidls(account, [i.origin.uidl or "" for i in items])
        return [i for i in items if i.origin.uidl not in stored_uidls]
    known = known_uids(account, first.folder, first.uidvalidity or 0, [i.origin.uid or 0 for i in items])
    return [i for i in items if i.origin.uid not in known]


def by_size(uids: Sequence[int], sizes: dict[int, int], budget: int) -> Iterator[list[int]]:
    """``uids`` in order, cut into pieces of at most ``budget`` bytes (a bigger message is a piece alone)."""
    piece: list[int] = []
    total = 0
    for uid in uids:
        size = sizes.get(uid, 0)
        if piece and total + size > budget:
            yield piece
            piece, total = [], 0
        piece.append(uid)
        total += size
    if piece:
        yield piece


def chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of ``items``, ``size`` long (the last one may be shorter)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
