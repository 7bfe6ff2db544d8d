"""Fetching over IMAP: every folder of the account, read with EXAMINE and BODY.PEEK (nothing changes on the
server unless the account asks for it), in batches of at most "batch size" messages and 16 MB, the next
batch downloading while one is stored; after-fetch actions applied after the commit."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from sqlalchemy import select, update

from webapp.adapters.mail import imap
from webapp.adapters.mail.imap import FetchedMessage, ImapSession
from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage, FolderState
from webapp.services.account import accounts, errorlog
from webapp.services.receiving import store
from webapp.services.receiving.batches import BATCH_BYTES, FETCH_BYTES, BatchRun, Item, by_size, chunks, known_uids


class ImapRun(BatchRun):
    """A fetch over IMAP: each folder of the account, in batches, downloading one batch ahead."""

    def run(self) -> None:
        """Fetch each folder in batches, the next one downloading ahead; after-fetch actions follow each commit."""
        writable = self.account.after_fetch != "none"
        with imap.session(accounts.incoming_endpoint(self.account), accounts.incoming_auth(self.account)) as client:
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
                    for chunk in chunks(todo, self.account.batch_size)
                    for piece in by_size(chunk, sizes, BATCH_BYTES)
                ]
                # While a batch is stored, the next one downloads and goes to the blob folder (unless the
                # server is changed after each batch: then the connection is needed between batches; or
                # blobs go to the database: only the fetch's own thread and transaction may write there).
                ahead_allowed = not writable and self.folder is not None
                with ThreadPoolExecutor(1) as downloader, ThreadPoolExecutor(1) as writing:
                    writer = writing if self.folder is not None else None
                    ahead: Future[list[Item]] | None = None
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
            stored = stored_uids(account, folder, state.uidvalidity)
            wanted = [uid for uid in every if uid not in stored]
            known: set[int] = set()
        else:
            wanted = every[-account.fetch_count :] if account.fetch_order == "newest" else every[: account.fetch_count]
            known = known_uids(account, folder, state.uidvalidity, wanted)
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
        for chunk in chunks(uids, 5000):
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
    ) -> list[Item]:
        """FETCH ``uids`` and prepare their rows; with a ``writer`` thread, each piece is stored in the blob
        folder while the next one downloads (writing files is mostly the kernel's work, not the GIL's)."""
        # May run in the download thread: no database (and no expired model attribute) from here, except
        # through _put when blobs live in the database (then it runs in the fetch's own thread).
        limit = self.max_size
        too_big = {uid: sizes[uid] for uid in uids if limit and sizes.get(uid, 0) > limit}
        prepared: list[Future[list[Item]]] = []
        items: list[Item] = []

        def prepare(fetched: list[FetchedMessage]) -> None:
            if writer is None:
                items.extend(self._prepare(folder, uidvalidity, fetched, too_big))
            else:
                prepared.append(writer.submit(self._prepare, folder, uidvalidity, fetched, too_big))

        prepare(client.fetch_headers(list(too_big)))
        # FETCH in pieces of at most FETCH_BYTES, so memory stays flat whatever the messages weigh.
        for piece in by_size([uid for uid in uids if uid not in too_big], sizes, FETCH_BYTES):
            prepare(client.fetch_messages(piece))
        for future in prepared:
            items.extend(future.result())
        self.summary.failed += len(uids) - len(items)
        return sorted(items, key=lambda item: item.origin.uid or 0)

    def _prepare(
        self, folder: str, uidvalidity: int, fetched: Sequence[FetchedMessage], too_big: dict[int, int]
    ) -> list[Item]:
        return [
            self._prepared(
                store.Received(
                    store.Origin(folder, uidvalidity, m.uid),
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
        for batch in chunks(pending, 500):
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


def stored_uids(account: EmailAccount, folder: str, uidvalidity: int) -> set[int]:
    """Every UID stored for ``folder`` under ``uidvalidity`` (what a replicate fetch leaves out)."""
    query = select(EmailMessage.uid).where(
        EmailMessage.account_id == account.id, EmailMessage.folder == folder, EmailMessage.uidvalidity == uidvalidity
    )
    return {int(uid) for uid in db.session.scalars(query) if uid is not None}
