"""A fetch run: the one way a fetch runs, whatever started it (the worker's job, `fetch --inline`, tests).

It records a :class:`FetchRun` (the account page shows the last runs; a job's progress outlives RQ's
result), fetches, releases each batch's ``fetch`` event once the batch's bodies are stored, and fires
``complete`` or ``error`` — so every caller gets the same callbacks, webhooks and history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount, FetchRun
from webapp.models.base import utcnow
from webapp.models.fetchrun import RunStatus, RunTrigger
from webapp.services.account import accounts
from webapp.services.errors import ConnectorError
from webapp.services.events import callbacks
from webapp.services.platform.failpoints import NONE as NO_FAILPOINTS
from webapp.services.platform.failpoints import FailPoints
from webapp.services.receiving import fetching, subscriptions
from webapp.services.receiving.fetching import Cancelled, FetchSummary, Progress
from webapp.services.receiving.fetchlock import AlreadyRunning

__all__ = ["Cancelled", "FetchSummary", "Progress", "by_job", "describe", "last_runs", "run"]


def run(
    account: EmailAccount,
    *,
    trigger: str = RunTrigger.COMMAND,
    job_id: str | None = None,
    on_fetch: str | None = None,
    on_complete: str | None = None,
    on_error: str | None = None,
    progress: Progress | None = None,
    cancelled: fetching.CancelCheck | None = None,
    failpoints: FailPoints = NO_FAILPOINTS,
    record_empty: bool = True,
) -> FetchSummary:
    """Fetch ``account`` as its settings say, with callbacks and a history row; raise ConnectorError (after
    the ``error`` event) when it fails. Callbacks are dotted paths or webhook URLs (``services.callbacks``).

    ``record_empty=False`` (a subscription's poll or IDLE wake-up): a run that found nothing leaves no row,
    or the history would fill with a row a minute that says nothing."""
    accounts.require_receiving(account)  # before a history row: a send-only account has no fetch to record
    account_id = account.id
    run_id = _start(account_id, trigger, job_id)
    try:
        subscribed, on_new_email = subscriptions.active_target(account)
        listener = callbacks.Listener(on_fetch=on_fetch, subscribed=subscribed, on_new_email=on_new_email)
        summary = fetching.fetch(account, progress, cancelled=cancelled, listener=listener, failpoints=failpoints)
    except fetching.AccountRemoved:
        db.session.rollback()  # its history and callbacks went with it: nobody is left to tell
        raise
    except ConnectorError as exc:
        db.session.rollback()
        callbacks.release_held(account)
        _finish(run_id, RunStatus.FAILED, None, str(exc), close_stale=not isinstance(exc, AlreadyRunning))
        callbacks.failed(account, str(exc), on_error)
        raise
    except Exception as exc:
        db.session.rollback()
        reason = f"unexpected error ({type(exc).__name__}); see the log"
        _finish(run_id, RunStatus.FAILED, None, reason, close_stale=False)
        callbacks.failed(account, reason, on_error)
        raise
    callbacks.release_held(account)
    status = RunStatus.CANCELLED if summary.cancelled else RunStatus.FINISHED
    found_nothing = not (summary.stored or summary.quarantined or summary.failed)  # skipped: stored before
    forget = not record_empty and found_nothing and status == RunStatus.FINISHED
    _finish(run_id, status, summary, None, close_stale=True, forget=forget)
    callbacks.completed(account, summary.as_dict(), on_complete)
    return summary


@writes
def _start(account_id: int, trigger: str, job_id: str | None) -> int:
    row = FetchRun(account_id=account_id, trigger=str(trigger), job_id=job_id, status=RunStatus.RUNNING)
    db.session.add(row)
    db.session.commit()
    return row.id


@writes
def _finish(
    run_id: int,
    status: RunStatus,
    summary: FetchSummary | None,
    error: str | None,
    *,
    close_stale: bool,
    forget: bool = False,
) -> None:
    row = db.session.get(FetchRun, run_id)
    if row is None:  # the account was removed meanwhile
        db.session.rollback()
        return
    row.status, row.ended_at, row.error = status, utcnow(), error[:2000] if error else None
    if summary is not None:
        row.stored, row.skipped, row.quarantined, row.failed = (
            summary.stored,
            summary.skipped,
            summary.quarantined,
            summary.failed,
        )
        row.total, row.total_on_server = summary.total, summary.total_on_server
    if close_stale:
        # This run held the account's fetch lock: any older run still "running" died with its process.
        db.session.execute(
            update(FetchRun)
            .where(FetchRun.account_id == row.account_id, FetchRun.status == RunStatus.RUNNING, FetchRun.id < run_id)
            .values(status=RunStatus.FAILED, ended_at=utcnow(), error="interrupted: its process ended")
        )
    if forget:
        db.session.delete(row)
    db.session.commit()


def last_runs(account: EmailAccount, limit: int = 10) -> list[FetchRun]:
    """The account's newest runs first."""
    query = select(FetchRun).where(FetchRun.account_id == account.id).order_by(FetchRun.id.desc()).limit(limit)
    return list(db.session.scalars(query))


def by_job(job_id: str) -> FetchRun | None:
    """The run an RQ job made (its result expires from Redis; the row stays)."""
    return db.session.scalars(select(FetchRun).where(FetchRun.job_id == job_id).order_by(FetchRun.id.desc())).first()


def describe(run: FetchRun) -> dict[str, object]:
    """The JSON form of a run (``fetch runs --json``)."""
    return {
        "id": run.id,
        "trigger": run.trigger,
        "job_id": run.job_id,
        "status": run.status,
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "stored": run.stored,
        "skipped": run.skipped,
        "quarantined": run.quarantined,
        "failed": run.failed,
        "total": run.total,
        "total_on_server": run.total_on_server,
        "error": run.error,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
