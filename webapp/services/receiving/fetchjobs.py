"""Fetch jobs on the RQ ``fetch`` queue: enqueueing one per account, reading its progress, waiting for it.

The job (``jobs.fetch.fetch_account``) writes its progress into the job's meta; pages poll it. An account
has at most one fetch queued or running: asking again returns the same job.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from webapp.adapters.coordination import JobStatus, Lock
from webapp.models import EmailAccount
from webapp.models.fetchrun import RunStatus, RunTrigger
from webapp.services.account import accounts
from webapp.services.errors import Conflict, ConnectorError, NotFound
from webapp.services.events import callbacks
from webapp.services.platform import queues
from webapp.services.platform.redisconn import coordination
from webapp.services.receiving import fetchruns

JOB_FUNCTION = "jobs.fetch.fetch_account"
JOB_TIMEOUT = 3 * 3600
RESULT_TTL = 24 * 3600
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ACTIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


class AlreadyQueued(Conflict):
    """The account's fetch job is queued or running already, and the caller gave callbacks of its own."""

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class NoWorker(ConnectorError):
    """No worker with a recent heartbeat listens on the fetch queue."""


@dataclass(frozen=True)
class FetchStatus:
    job_id: str
    account_id: int
    state: str  # queued | started | finished | failed | stopped | canceled
    done: int = 0
    total: int = 0
    batch: int = 0
    rate: float = 0.0
    folder: str = ""
    summary: dict[str, int] = field(default_factory=dict)
    error: str | None = None

    @property
    def cancelled(self) -> bool:
        """Did the fetch stop because it was cancelled (what it stored before stays)?"""
        return bool(self.summary.get("cancelled"))

    @property
    def finished(self) -> bool:
        """Is the job over (no longer queued, scheduled, deferred or running), however it ended?"""
        return self.state not in {s.value for s in _ACTIVE}

    @property
    def percent(self) -> int:
        """The progress bar's percentage: 100 once the job finished, 0 while the total is unknown."""
        if self.state == JobStatus.FINISHED.value:
            return 100
        return int(100 * self.done / self.total) if self.total else 0


def _job_marker(account_id: int) -> Lock:
    """The account's fetch job, named: ``<job id>:<when queued>`` while one is queued or running."""
    return coordination().lock(f"fetch:account:{account_id}", JOB_TIMEOUT)


def enqueue(
    account: EmailAccount,
    on_fetch: str | None = None,
    on_complete: str | None = None,
    on_error: str | None = None,
    trigger: str = RunTrigger.PAGE,
) -> str:
    """Queue a fetch of the account; return the job id — the queued or running one, if there is one: an
    account has at most one fetch job at a time, however many clicks or callers ask at once.

    The callbacks are dotted paths of Python callables or webhook URLs (see ``services.callbacks``).
    """
    accounts.require_receiving(account)
    for callback in (on_fetch, on_complete, on_error):
        if callback is not None:
            callbacks.check_callback(account, callback)
    marker = _job_marker(account.id)
    for _attempt in range(5):
        job_id = uuid.uuid4().hex
        # The marker names the account's job; taking it makes exactly one caller the one that enqueues.
        if marker.acquire(f"{job_id}:{time.time():.0f}"):
            queues.queue(queues.FETCH).enqueue(
                JOB_FUNCTION,
                account.id,
                on_fetch,
                on_complete,
                on_error,
                str(trigger),
                job_id=job_id,
                job_timeout=JOB_TIMEOUT,
                result_ttl=RESULT_TTL,
                failure_ttl=RESULT_TTL,
                meta={"account_id": account.id, "done": 0, "total": 0},
                description=f"fetch {account.name}",
            )
            return job_id
        holder = marker.holder() or ""
        current, _, since = holder.partition(":")
        if current and _is_active(current, since):
            if on_fetch or on_complete or on_error:
                # Its callbacks were fixed when it was queued: dropping these silently would lose events.
                raise AlreadyQueued(
                    f"a fetch of {account.name} is already queued or running (job {current}); callbacks go with "
                    "a fetch they start: wait for that one to end, then ask again",
                    current,
                )
            return current
        marker.release(holder)  # the job ended without saying so: replace it
    raise Conflict("the account's fetch job could not be queued; try again")


def current(account: EmailAccount) -> str | None:
    """The account's queued or running fetch job, if any."""
    holder = _job_marker(account.id).holder() or ""
    job_id, _, since = holder.partition(":")
    return job_id if job_id and _is_active(job_id, since) else None


def _is_active(job_id: str, since: str) -> bool:
    job = coordination().job(job_id)
    if job is None:
        # Set a moment ago by a caller that is enqueueing it right now: it is the account's job.
        return since.isdigit() and time.time() - int(since) < 60
    return job.get_status(refresh=True) in _ACTIVE


def status(job_id: str, account: EmailAccount | None = None) -> FetchStatus:
    """The job's state and progress; NotFound when it is unknown or expired, or not ``account``'s job."""
    found = _status(job_id)
    if account is not None and found.account_id != account.id:
        raise NotFound(f"no fetch job {job_id!r} on this account")
    return found


def _status(job_id: str) -> FetchStatus:
    if not _JOB_ID.fullmatch(job_id):  # RQ refuses other characters (and ":" names an execution)
        raise NotFound(f"no fetch job {job_id[:64]!r}")
    job = coordination().job(job_id)
    if job is None:
        return _from_history(job_id)
    if job.func_name != JOB_FUNCTION:
        raise NotFound(f"no fetch job {job_id!r}")
    state = job.get_status(refresh=True)
    meta: dict[str, Any] = job.get_meta(refresh=True)
    result = job.return_value(refresh=True) if state == JobStatus.FINISHED else None
    error = meta.get("error")
    if state == JobStatus.FAILED and not error:
        error = "the fetch job failed unexpectedly; see the worker's log"
    return FetchStatus(
        job_id=job.id,
        account_id=int(meta.get("account_id", job.args[0] if job.args else 0)),
        state=str(state.value if state else "unknown"),
        done=int(meta.get("done", 0)),
        total=int(meta.get("total", 0)),
        batch=int(meta.get("batch", 0)),
        rate=float(meta.get("rate", 0.0)),
        folder=str(meta.get("folder", "")),
        summary=dict(result) if isinstance(result, dict) else {},
        error=error,
    )


def _from_history(job_id: str) -> FetchStatus:
    """A job RQ has forgotten (its result expired): what its run recorded."""
    run = fetchruns.by_job(job_id)
    if run is None:
        raise NotFound(f"no fetch job {job_id!r}")
    summary = {
        "stored": run.stored,
        "skipped": run.skipped,
        "quarantined": run.quarantined,
        "failed": run.failed,
        "total": run.total,
        "total_on_server": run.total_on_server,
        "cancelled": int(run.status == RunStatus.CANCELLED),
    }
    state = {RunStatus.RUNNING: "started", RunStatus.FAILED: "failed"}.get(RunStatus(run.status), "finished")
    return FetchStatus(job_id, run.account_id, state, run.total, run.total, summary=summary, error=run.error)


def live_worker(queue_name: str = queues.FETCH) -> bool:
    """Is a worker with a recent heartbeat listening on ``queue_name``?"""
    return coordination().live_worker(queue_name)


def wait(
    job_id: str, timeout: float, on_progress: Callable[[FetchStatus], None] | None = None, interval: float = 0.5
) -> FetchStatus:
    """Poll the job until it ends or ``timeout`` seconds pass (then its last status is returned)."""
    deadline = time.monotonic() + timeout
    current = status(job_id)
    while not current.finished and time.monotonic() < deadline:
        if on_progress:
            on_progress(current)
        time.sleep(interval)
        current = status(job_id)
    return current


def cancel(job_id: str, account: EmailAccount | None = None) -> FetchStatus:
    """Ask the running fetch to stop after its current batch (what is stored stays); return its status.

    NotFound for an unknown or malformed id, or a job of another account than ``account``.
    """
    status(job_id, account)
    coordination().put(f"fetch:cancel:{job_id}", "1", JOB_TIMEOUT)
    return status(job_id, account)


def cancel_requested(job_id: str) -> bool:
    """Has someone asked this job to stop (it checks between batches)?"""
    return coordination().exists(f"fetch:cancel:{job_id}")


def release(account_id: int, job_id: str) -> None:
    """Forget the account's running fetch, if it is still this job (called by the job when it ends)."""
    marker = _job_marker(account_id)
    holder = marker.holder() or ""
    if holder.partition(":")[0] == job_id:
        marker.release(holder)
