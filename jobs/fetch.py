"""RQ entry point: one fetch run of an account (``webapp.services.receiving.fetchruns``), progress in the job's meta."""

from __future__ import annotations

from rq import get_current_job
from rq.job import Job

from jobs.context import app_context
from webapp.models.fetchrun import RunTrigger
from webapp.services.account import accounts
from webapp.services.errors import ConnectorError
from webapp.services.receiving import fetching, fetchjobs, fetchruns


def fetch_account(
    account_id: int,
    on_fetch: str | None = None,
    on_complete: str | None = None,
    on_error: str | None = None,
    trigger: str = RunTrigger.PAGE,
) -> dict[str, int]:
    """Fetch the account as its settings say; progress, cancellation and errors go through the job's meta."""
    job = get_current_job()

    def progress(state: fetching.FetchProgress) -> None:
        if job is not None:
            job.meta.update(
                done=state.done, total=state.total, batch=state.batch, folder=state.folder, rate=round(state.rate, 1)
            )
            job.save_meta()

    def cancelled() -> bool:
        return job is not None and fetchjobs.cancel_requested(job.id)

    with app_context():
        try:
            account = accounts.by_id(account_id)
            summary = fetchruns.run(
                account,
                trigger=trigger,
                job_id=job.id if job is not None else None,
                on_fetch=on_fetch,
                on_complete=on_complete,
                on_error=on_error,
                progress=progress,
                cancelled=cancelled,
            )
            return summary.as_dict()
        except ConnectorError as exc:
            _note_error(job, str(exc))
            raise
        except Exception as exc:
            _note_error(job, f"unexpected error ({type(exc).__name__}); see the worker's log")
            raise
        finally:
            if job is not None:
                fetchjobs.release(account_id, job.id)


def _note_error(job: Job | None, reason: str) -> None:
    if job is not None:
        job.meta["error"] = reason
        job.save_meta()
