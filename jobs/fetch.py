"""RQ entry point: fetch an account's latest messages (``webapp.services.fetching``)."""

from __future__ import annotations

from rq import get_current_job
from rq.job import Job

from jobs.context import app_context
from webapp.services import accounts, fetching, fetchjobs
from webapp.services.errors import ConnectorError


def fetch_account(account_id: int) -> dict[str, int]:
    """Fetch the account's latest N messages; progress and errors go into the job's meta."""
    job = get_current_job()

    def progress(done: int, total: int) -> None:
        if job is not None:
            job.meta.update(done=done, total=total)
            job.save_meta()

    with app_context():
        try:
            return fetching.fetch_latest(accounts.by_id(account_id), progress).as_dict()
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
