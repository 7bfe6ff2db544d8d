"""RQ entry point: fetch an account (``webapp.services.fetching``), reporting progress in the job's meta."""

from __future__ import annotations

from rq import get_current_job
from rq.job import Job

from jobs.context import app_context
from webapp.services import accounts, callbacks, fetching, fetchjobs
from webapp.services.errors import ConnectorError


def fetch_account(
    account_id: int, on_fetch: str | None = None, on_complete: str | None = None, on_error: str | None = None
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
        account = None
        try:
            account = accounts.by_id(account_id)
            listener = callbacks.Listener(on_fetch=on_fetch)
            summary = fetching.fetch(account, progress, cancelled=cancelled, listener=listener).as_dict()
            callbacks.completed(account, summary, on_complete)
            return summary
        except ConnectorError as exc:
            _note_error(job, str(exc))
            if account is not None:
                callbacks.failed(account, str(exc), on_error)
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
