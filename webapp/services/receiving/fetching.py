"""Fetching an account's mail into the database: latest N, or replicate whole folders, resumably.

Each batch is stored in one transaction together with its folder's checkpoint (UIDVALIDITY and the
highest UID stored), so a crash at any point, then a rerun, stores every message exactly once; the
unique keys of design §4 back that up. Nothing changes on the server unless the account asks for it
(IMAP reads with EXAMINE and BODY.PEEK; POP3 sends DELE only when "delete after fetch" is set, and only
after the message is committed).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Protocol, TypeVar

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from webapp.adapters import memory
from webapp.adapters.errors import AdapterError
from webapp.adapters.mail import imap, pop3
from webapp.adapters.mail.imap import FetchedMessage, ImapSession
from webapp.adapters.storage import blobstore
from webapp.adapters.storage.blobstore import FolderBlobStore
from webapp.database import write_transaction, writes
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage, FolderState
from webapp.models.message import BodyState
from webapp.services.account import accounts, errorlog
from webapp.services.errors import ConnectionFailed, ConnectorError, NotFound
from webapp.services.platform import blobs
from webapp.services.platform.failpoints import NONE as NO_FAILPOINTS
from webapp.services.platform.failpoints import FailPoints
from webapp.services.reading import messages
from webapp.services.receiving import fetchlock

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

    def in_transaction(self, account: EmailAccount, ids: Sequence[int], key: str) -> None: ...


class Cancelled(ConnectorError):
    """The fetch was cancelled between two batches; everything stored so far stays."""


class AccountRemoved(NotFound):
    """The account was removed while it was being fetched (and everything stored for it with it)."""


def account_exists(account_id: int) -> bool:
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
        values = asdict(self)
        values["cancelled"] = int(self.cancelled)
        return values


@dataclass(frozen=True)
class _Item:
    """A fetched message, its raw bytes in the blob store (not flushed yet), its row ready to insert."""

    origin: messages.Origin
    row: dict[str, object] = field(repr=False)

    @property
    def digest(self) -> str:
        return str(self.row["raw_sha256"])

    @property
    def oversize(self) -> bool:
        return self.row["body_state"] == BodyState.OVERSIZE


class _NoListener:
    def in_transaction(self, account: EmailAccount, ids: Sequence[int], key: str) -> None:
        pass


def fetch(
    account: EmailAccount,
    progress: Progress | None = None,
    *,
    cancelled: Callable[[], bool] | None = None,
    listener: BatchListener | None = None,
    failpoints: FailPoints = NO_FAILPOINTS,
) -> FetchSummary:
    """Fetch the account as its settings say; failures go to the Error logs and raise ConnectionFailed.

    Only one fetch per account runs at a time, across workers and machines (AlreadyRunning otherwise).
    """
    memory.fix_mmap_threshold()
    account_id = account.id
    with fetchlock.hold(account_id) as lock:
        run = _Run(account, progress, cancelled, listener or _NoListener(), lock, failpoints)
        try:
            if account.incoming_protocol == "imap":
                run.imap()
            else:
                run.pop3()
        except AccountRemoved:
            db.session.rollback()
            raise
        except AdapterError as exc:
            db.session.rollback()
            if not account_exists(account_id):
                raise AccountRemoved("the account was removed while it was being fetched") from None
            reason = f"Incoming server: {exc}"
            errorlog.record(account, "fetch", reason, detail=errorlog.detail_of(exc))
            messages.complete_pending(account)  # the batches stored before the failure
            raise ConnectionFailed(reason, exc.kind) from None
        except Cancelled:
            db.session.rollback()
            run.summary.cancelled = True
        except BaseException:
            db.session.rollback()  # a crash mid-batch: nothing of that batch is half-stored
            if not account_exists(account_id):  # the rows it wrote to went with the account
                raise AccountRemoved("the account was removed while it was being fetched") from None
            raise
        _parsed, quarantined = messages.complete_pending(account)
        run.summary.quarantined += quarantined
        if run.summary.stored >= ANALYZE_AFTER:
            messages.refresh_statistics()
        return run.summary


class _Run:
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

    # --- IMAP -------------------------------------------------------------------------------------------

    def imap(self) -> None:
        writable = self.account.after_fetch != "none"
        with imap.session(accounts.incoming_endpoint(self.account), accounts.auth(self.account)) as client:
            for folder in self.account.fetch_folders:
                self.progress.folder = folder
                info = client.open_folder(folder, writable=writable)
                state = self._state(folder, info.uidvalidity)
                self._apply_pending_actions(client, folder, info.uidvalidity)
                todo = self._imap_todo(client, folder, state)
                sizes = self._sizes(client, todo)
                # A batch is at most "batch size" messages and at most BATCH_BYTES: memory stays flat
                # whatever the messages weigh.
                batches = [
                    piece
                    for chunk in _chunks(todo, self.account.batch_size)
                    for piece in _by_size(chunk, sizes, BATCH_BYTES)
                ]
                # While a batch is stored, the next one downloads and goes to the blob folder (unless the
                # server is changed after each batch: then the connection is needed between batches; or
                # blobs go to the database: only the fetch's own thread and transaction may write there).
                ahead_allowed = not writable and self.folder is not None
                with ThreadPoolExecutor(1) as downloader, ThreadPoolExecutor(1) as writing:
                    writer = writing if self.folder is not None else None
                    ahead: Future[list[_Item]] | None = None
                    for index, batch in enumerate(batches):
                        self._check_cancel()
                        if ahead is None:
                            items = self._download(client, folder, info.uidvalidity, batch, sizes, writer)
                        else:
                            items = ahead.result()
                            ahead = None
                        if ahead_allowed and index + 1 < len(batches):
                            following = batches[index + 1]
                            ahead = downloader.submit(
                                self._download, client, folder, info.uidvalidity, following, sizes, writer
                            )
                        self.failpoints.hit("downloaded")
                        stored = self._store(
                            items, state, max(batch), f"{folder}:{info.uidvalidity}:{batch[0]}-{batch[-1]}"
                        )
                        self._apply_actions(client, stored)
                        self._advance(len(batch))
                    if ahead is not None:
                        ahead.cancel()

    def _imap_todo(self, client: ImapSession, folder: str, state: FolderState) -> list[int]:
        account = self.account
        every = client.all_uids()
        if account.fetch_strategy == "replicate":
            # Every message of the folder that is not stored, whatever fetched before (a latest-N fetch
            # leaves older UIDs behind the checkpoint): the stored UIDs are one indexed query.
            stored = _stored_uids(account, folder, state.uidvalidity)
            wanted = [uid for uid in every if uid not in stored]
            known: set[int] = set()
        else:
            wanted = every[-account.fetch_count :] if account.fetch_order == "newest" else every[: account.fetch_count]
            known = _known_uids(account, folder, state.uidvalidity, wanted)
        todo = [uid for uid in wanted if uid not in known]
        self.summary.total_on_server += len(every)
        self.summary.skipped += len(wanted) - len(todo)
        self.summary.total += len(wanted)
        self.progress.done += len(wanted) - len(todo)
        self.progress.total = self.summary.total
        self.report(self.progress)
        return todo

    @writes
    def _state(self, folder: str, uidvalidity: int) -> FolderState:
        state = db.session.scalar(
            select(FolderState).where(FolderState.account_id == self.account.id, FolderState.folder == folder)
        )
        if state is None:
            state = FolderState(account_id=self.account.id, folder=folder, uidvalidity=uidvalidity, last_uid=0)
            db.session.add(state)
        elif state.uidvalidity != uidvalidity:
            # The server renumbered the folder: start over, re-linking what is stored by its bytes.
            errorlog.record(
                self.account,
                "fetch",
                f"folder {folder!r}: UIDVALIDITY changed from {state.uidvalidity} to {uidvalidity}; "
                "stored messages are re-linked by their content, nothing is stored twice",
                detail="kind=uidvalidity",
            )
            state.uidvalidity = uidvalidity
            state.last_uid = 0
        db.session.commit()
        return state

    def _sizes(self, client: ImapSession, uids: Sequence[int]) -> dict[int, int]:
        sizes: dict[int, int] = {}
        for chunk in _chunks(uids, 5000):
            sizes.update(client.sizes(chunk))
        return sizes

    def _download(
        self,
        client: ImapSession,
        folder: str,
        uidvalidity: int,
        uids: Sequence[int],
        sizes: dict[int, int],
        writer: ThreadPoolExecutor | None,
    ) -> list[_Item]:
        """FETCH ``uids`` and prepare their rows; with a ``writer`` thread, each piece is stored in the blob
        folder while the next one downloads (writing files is mostly the kernel's work, not the GIL's)."""
        # May run in the download thread: no database (and no expired model attribute) from here, except
        # through _put when blobs live in the database (then it runs in the fetch's own thread).
        limit = self.max_size
        too_big = {uid: sizes[uid] for uid in uids if limit and sizes.get(uid, 0) > limit}
        prepared: list[Future[list[_Item]]] = []
        items: list[_Item] = []

        def prepare(fetched: list[FetchedMessage]) -> None:
            if writer is None:
                items.extend(self._prepare(folder, uidvalidity, fetched, too_big))
            else:
                prepared.append(writer.submit(self._prepare, folder, uidvalidity, fetched, too_big))

        prepare(client.fetch_headers(list(too_big)))
        # FETCH in pieces of at most FETCH_BYTES, so memory stays flat whatever the messages weigh.
        for piece in _by_size([uid for uid in uids if uid not in too_big], sizes, FETCH_BYTES):
            prepare(client.fetch_messages(piece))
        for future in prepared:
            items.extend(future.result())
        self.summary.failed += len(uids) - len(items)
        return sorted(items, key=lambda item: item.origin.uid or 0)

    def _prepare(
        self, folder: str, uidvalidity: int, fetched: Sequence[FetchedMessage], too_big: dict[int, int]
    ) -> list[_Item]:
        return [
            self._prepared(
                messages.Received(
                    messages.Origin(folder, uidvalidity, m.uid),
                    m.raw,
                    m.seen,
                    m.flags,
                    m.internal_date,
                    too_big.get(m.uid),
                    self.pending_action,
                )
            )
            for m in fetched
        ]

    def _prepared(self, received: messages.Received) -> _Item:
        return _Item(received.origin, messages.prepare_received(received, self.max_size or 0, self._put))

    def _put(self, data: bytes) -> str:
        """Blobs are flushed once per batch (insert_received), before the rows naming them are committed.
        In the database they wait for the batch's write transaction (:meth:`_store`)."""
        if self.folder is not None:
            return self.folder.put(data, durable=False)  # any thread
        digest = blobstore.sha256(data)
        self._database_blobs[digest] = data
        return digest

    def _apply_pending_actions(self, client: ImapSession, folder: str, uidvalidity: int) -> None:
        """Finish server actions that a crash interrupted (their messages are committed)."""
        if self.account.after_fetch == "none":
            return
        pending = list(
            db.session.scalars(
                select(EmailMessage.id).where(
                    EmailMessage.account_id == self.account.id,
                    EmailMessage.folder == folder,
                    EmailMessage.uidvalidity == uidvalidity,
                    EmailMessage.pending_action.is_not(None),
                )
            )
        )
        for batch in _chunks(pending, 500):
            self._apply_actions(client, list(batch))

    @writes
    def _apply_actions(self, client: ImapSession, ids: Sequence[int]) -> None:
        action = self.account.after_fetch
        if action == "none" or not ids:
            return
        rows = db.session.execute(
            select(EmailMessage.id, EmailMessage.uid).where(
                EmailMessage.id.in_(list(ids)), EmailMessage.pending_action.is_not(None)
            )
        ).all()
        uids = [int(uid) for _id, uid in rows if uid is not None]
        if action == "seen":
            client.mark_seen(uids)
        elif action == "move":
            client.move(uids, self.account.after_fetch_folder)
        elif action == "delete":
            client.delete(uids)
        self.failpoints.hit("server_action")
        db.session.execute(
            update(EmailMessage).where(EmailMessage.id.in_([i for i, _uid in rows])).values(pending_action=None)
        )
        db.session.commit()

    # --- POP3 -------------------------------------------------------------------------------------------

    def pop3(self) -> None:
        account = self.account
        with pop3.session(accounts.incoming_endpoint(account), accounts.auth(account)) as client:
            listing = client.uidls()
            if account.fetch_strategy == "replicate":
                wanted = listing
            elif account.fetch_order == "newest":
                wanted = listing[-account.fetch_count :]
            else:
                wanted = listing[: account.fetch_count]
            known = _known_uidls(account, [uidl for _n, uidl in wanted])
            todo = [(number, uidl) for number, uidl in wanted if uidl not in known]
            self.summary.total = len(wanted)
            self.summary.total_on_server = len(listing)
            self.summary.skipped = len(wanted) - len(todo)
            self.progress.total, self.progress.done, self.progress.folder = len(wanted), self.summary.skipped, "INBOX"
            self.report(self.progress)
            if account.after_fetch == "delete":
                # Stored by an earlier run that ended before QUIT: their DELE never took effect.
                pending = _pending_uidls(account)
                for number, uidl in listing:
                    if uidl in pending:
                        client.delete(number)
            limit = account.max_message_size
            for batch in _chunks(todo, account.batch_size):
                self._check_cancel()
                items = []
                for number, uidl in batch:
                    size = client.size(number) if limit else 0
                    origin = messages.Origin("INBOX", uidl=uidl)
                    if limit and size > limit:
                        received = messages.Received(origin, client.headers(number), oversize=size,
                                                     pending_action=self.pending_action)  # fmt: skip
                    else:
                        received = messages.Received(origin, client.retrieve(number),
                                                     pending_action=self.pending_action)  # fmt: skip
                    items.append(self._prepared(received))
                self.failpoints.hit("downloaded")
                self._store(items, None, 0, f"INBOX:{batch[0][1]}-{batch[-1][1]}")
                if account.after_fetch == "delete":
                    for number, _uidl in batch:
                        client.delete(number)  # takes effect at QUIT, after the commit above
                self._advance(len(batch))
        # QUIT went through: the server has applied every DELE of this session.
        if account.after_fetch == "delete":
            with write_transaction():
                db.session.execute(
                    update(EmailMessage)
                    .where(EmailMessage.account_id == account.id, EmailMessage.pending_action.is_not(None))
                    .values(pending_action=None)
                )
                db.session.commit()

    # --- storing ----------------------------------------------------------------------------------------

    @writes
    def _store(self, items: Sequence[_Item], state: FolderState | None, last_uid: int, key: str) -> list[int]:
        """Store ``items`` and the checkpoint in one transaction; return the ids stored. Their bodies are
        parsed after the download (complete_pending): parsing meanwhile took the CPU the download needs."""
        for _attempt in range(3):
            for data in self._database_blobs.values():
                blobs.put(data, durable=False)
            relinked = self._relink(items, state) if state is not None and self._has_stale(state) else set()
            fresh = [item for item in items if item.origin.uid not in relinked]
            ids = messages.insert_received(self.account, [item.row for item in fresh])
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
                unstored = _unstored(self.account, items)
                self.summary.skipped += len(items) - len(unstored)
                items = unstored
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

    def _relink(self, items: Sequence[_Item], state: FolderState) -> set[int]:
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


def _stored_uids(account: EmailAccount, folder: str, uidvalidity: int) -> set[int]:
    query = select(EmailMessage.uid).where(
        EmailMessage.account_id == account.id, EmailMessage.folder == folder, EmailMessage.uidvalidity == uidvalidity
    )
    return {int(uid) for uid in db.session.scalars(query) if uid is not None}


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


def _pending_uidls(account: EmailAccount) -> set[str]:
    query = select(EmailMessage.uidl).where(
        EmailMessage.account_id == account.id, EmailMessage.pending_action.is_not(None)
    )
    return {uidl for uidl in db.session.scalars(query) if uidl is not None}


def _unstored(account: EmailAccount, items: Sequence[_Item]) -> list[_Item]:
    if not items:
        return []
    first = items[0].origin
    if first.uidl is not None:
        known_uidls = _known_uidls(account, [i.origin.uidl or "" for i in items])
        return [i for i in items if i.origin.uidl not in known_uidls]
    known = _known_uids(account, first.folder, first.uidvalidity or 0, [i.origin.uid or 0 for i in items])
    return [i for i in items if i.origin.uid not in known]


def _by_size(uids: Sequence[int], sizes: dict[int, int], budget: int) -> Iterator[list[int]]:
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


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
