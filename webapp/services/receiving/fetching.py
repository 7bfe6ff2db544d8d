"""Fetching an account's mail into the database: latest N, or replicate whole folders, resumably.

Each batch is stored in one transaction together with its folder's checkpoint (UIDVALIDITY and the
highest UID stored), so a crash at any point, then a rerun, stores every message exactly once; the
unique keys of design §4 back that up. Nothing changes on the server unless the account asks for it
(IMAP reads with EXAMINE and BODY.PEEK; POP3 sends DELE only when "delete after fetch" is set, and only
after the message is committed).
"""

from __future__ import annotations

from collections.abc import Callable

from webapp.adapters import memory
from webapp.adapters.errors import AdapterError
from webapp.extensions import db
from webapp.models import EmailAccount
from webapp.services.account import accounts, errorlog
from webapp.services.errors import ConnectionFailed
from webapp.services.platform.failpoints import NONE as NO_FAILPOINTS
from webapp.services.platform.failpoints import FailPoints
from webapp.services.receiving import fetchlock, store
from webapp.services.receiving.batches import (
    ANALYZE_AFTER,
    AccountRemoved,
    BatchListener,
    CancelCheck,
    Cancelled,
    FetchProgress,
    FetchSummary,
    NoListener,
    Progress,
    account_exists,
)
from webapp.services.receiving.imaprun import ImapRun
from webapp.services.receiving.pop3run import Pop3Run

__all__ = [
    "AccountRemoved",
    "BatchListener",
    "CancelCheck",
    "Cancelled",
    "FetchProgress",
    "FetchSummary",
    "Progress",
    "account_exists",
    "fetch",
]


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
    accounts.require_receiving(account)
    memory.fix_mmap_threshold()
    account_id = account.id
    with fetchlock.hold(account_id) as lock:
        kind = ImapRun if account.incoming_protocol == "imap" else Pop3Run
        run = kind(account, progress, cancelled, listener or NoListener(), lock, failpoints)
        try:
            run.run()
        except AccountRemoved:
            db.session.rollback()
            raise
        except AdapterError as exc:
            db.session.rollback()
            if not account_exists(account_id):
                raise AccountRemoved("the account was removed while it was being fetched") from None
            reason = f"Incoming server: {exc}"
            errorlog.record(account, "fetch", reason, detail=errorlog.detail_of(exc))
            store.complete_pending(account)  # the batches stored before the failure
            raise ConnectionFailed(reason, exc.kind) from None
        except Cancelled:
            db.session.rollback()
            run.summary.cancelled = True
        except BaseException:
            db.session.rollback()  # a crash mid-batch: nothing of that batch is half-stored
            if not account_exists(account_id):  # the rows it wrote to went with the account
                raise AccountRemoved("the account was removed while it was being fetched") from None
            raise
        _parsed, quarantined = store.complete_pending(account)
        run.summary.quarantined += quarantined
        if run.summary.stored >= ANALYZE_AFTER:
            store.refresh_statistics()
        return run.summary
