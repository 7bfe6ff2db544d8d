"""Removing an account while its fetch runs in the worker; page, CLI and schedule asking at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import func, select

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.webclient import WebClient
from webapp.extensions import db
from webapp.models import Delivery, EmailMessage, FetchRun, FolderState
from webapp.services import schedule
from webapp.services.receiving import fetchjobs

EXE = Path(sys.executable).with_name("email-connector")


def test_removing_an_account_while_its_fetch_runs(
    app: Flask, make_account, make_user, dovecot: Dovecot, worker: Any, web_server: str
) -> None:
    count = 1500
    dovecot.deliver_many("alice", generated.mix(count))
    account = make_account(fetch_strategy="replicate", batch_size=50)
    account_id = account.id
    make_user("boss", role="admin")
    job_id = fetchjobs.enqueue(account)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = fetchjobs.status(job_id)
        if status.done >= 200:
            break
        time.sleep(0.05)
    assert status.done >= 200 and not status.finished, status
    client = WebClient(web_server)
    client.login("boss")
    started = time.monotonic()
    code, page = client.post(f"/accounts/{account_id}/delete", {}, page=client.get(f"/accounts/{account_id}/delete")[1])
    took = time.monotonic() - started
    assert code == 200 and "were removed" in page, (code, page[:300])
    result = fetchjobs.wait(job_id, timeout=300)
    db.session.rollback()
    left = {
        "messages": db.session.scalar(select(func.count(EmailMessage.id)).where(EmailMessage.account_id == account_id)),
        "folder_state": db.session.scalar(
            select(func.count()).select_from(FolderState).where(FolderState.account_id == account_id)
        ),
        "runs": db.session.scalar(select(func.count(FetchRun.id)).where(FetchRun.account_id == account_id)),
        "deliveries": db.session.scalar(select(func.count(Delivery.id)).where(Delivery.account_id == account_id)),
    }
    worker.log.read_text()
    report = f"removal took {took:.1f}s; job {result.state} done={result.done} summary={result.summary} error={result.error}; left={left}"
    print(report)
    assert all(v == 0 for v in left.values()), report
    assert result.finished and result.state in ("failed", "finished", "stopped", "canceled"), report
    assert result.done < count, "the fetch went on downloading the whole folder for an account that is gone: " + report
    assert "unexpected error" not in (result.error or ""), "the fetch ends as an unexpected error: " + report


def test_page_cli_and_schedule_asking_at_once_make_one_job(
    app: Flask, make_account, make_user, dovecot: Dovecot, web_server: str, worker_env: dict
) -> None:
    dovecot.deliver_many("alice", generated.mix(50))
    account = make_account(fetch_every_minutes=1)
    make_user("boss", role="admin")
    client = WebClient(web_server)
    client.login("boss")
    page = client.get(f"/accounts/{account.id}/mailbox")[1]
    cli = [
        subprocess.Popen(
            [str(EXE), "fetch", "Work", "--json"],
            env=worker_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    client.post(f"/accounts/{account.id}/fetch", {}, page=page)
    schedule.run_due()
    outs = [p.communicate(timeout=60) for p in cli]
    from webapp.services.platform import queues

    queued = queues.queue(queues.FETCH).get_job_ids()
    assert len(queued) == 1, (queued, outs)


def test_inline_fetch_while_the_worker_fetches_says_so_in_one_line(
    app: Flask, make_account, dovecot: Dovecot, worker: Any, worker_env: dict
) -> None:
    dovecot.deliver_many("alice", generated.mix(1500))
    account = make_account(fetch_strategy="replicate", batch_size=50)
    job_id = fetchjobs.enqueue(account)
    deadline = time.monotonic() + 120
    while fetchjobs.status(job_id).done < 100 and time.monotonic() < deadline:
        time.sleep(0.05)
    done = subprocess.run(
        [str(EXE), "fetch", "Work", "--inline"], env=worker_env, capture_output=True, text=True, timeout=300
    )
    result = fetchjobs.wait(job_id, timeout=300)
    assert result.state == "finished", result
    assert done.returncode != 0 and "already running" in done.stderr, (
        done.returncode,
        done.stdout[-300:],
        done.stderr[-500:],
    )
    assert "Traceback" not in done.stderr, done.stderr[-1500:]
