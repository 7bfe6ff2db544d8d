"""The outbox drained by real worker processes (``email-connector send-queued``): claim races, workers
killed with SIGKILL mid-run, Redis emptied mid-run. The database is the truth throughout."""

from __future__ import annotations

import email
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from email.policy import default
from pathlib import Path

from sqlalchemy import func, select

from tests.servers import redis as test_redis
from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage
from webapp.models.base import utcnow
from webapp.models.message import MessageStatus
from webapp.services.outgoing import delivery, outbox
from webapp.services.outgoing.sending import Draft

EXE = str(Path(sys.executable).with_name("email-connector"))


def _queue(account: EmailAccount, count: int, tag: str) -> dict[str, int]:
    """Queue ``count`` messages at once (no worker nudged); their Message-IDs → row ids."""
    items = [(Draft(to=f"{tag}{n}@example.test", subject=f"{tag} {n}", text="x\n"), None) for n in range(count)]
    outbox.enqueue_many(account, items)
    rows = db.session.execute(
        select(EmailMessage.message_id, EmailMessage.id).where(EmailMessage.account_id == account.id)
    )
    return {str(mid): ident for mid, ident in rows}


def _received(smtp: SmtpServer) -> Counter[str]:
    with smtp.lock:
        data = [r.data for r in smtp.received]
    return Counter(str(email.message_from_bytes(d, policy=default)["Message-ID"]).strip("<>") for d in data)


def _statuses(account_id: int) -> Counter[str]:
    db.session.rollback()
    query = (
        select(EmailMessage.status, func.count())
        .where(EmailMessage.account_id == account_id)
        .group_by(EmailMessage.status)
    )
    return Counter({str(row[0]): int(row[1]) for row in db.session.execute(query)})


def _send_queued(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [EXE, "send-queued", "--json"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_eight_workers_started_at_once_send_each_message_exactly_once(
    make_account, smtp: SmtpServer, worker_env: dict[str, str]
) -> None:
    account = make_account(send_connections=8)
    for round_number in range(3):
        smtp.reset()
        ids = _queue(account, 100, f"race{round_number}-")
        workers = [_send_queued(worker_env) for _ in range(8)]
        outputs = [w.communicate(timeout=120) for w in workers]
        assert all(w.returncode == 0 for w in workers), outputs
        mine = {mid: n for mid, n in _received(smtp).items() if mid in ids}
        assert len(mine) == 100 and set(mine.values()) == {1}, Counter(mine.values())
        assert _statuses(account.id)[MessageStatus.SENT] == 100 * (round_number + 1)
        assert sum('"sent": ' in out for out, _err in outputs) == 8


def test_workers_killed_mid_run_lose_nothing_and_mark_what_they_may_have_sent(
    make_account, smtp: SmtpServer, worker_env: dict[str, str]
) -> None:
    account = make_account(send_connections=2)
    ids = _queue(account, 1000, "kill")
    env = {**worker_env, "EMAILCONNECTOR_SEND_LEASE_SECONDS": "2"}
    rng = random.Random(1)
    kills = 0
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        left = _statuses(account.id)
        if not left[MessageStatus.QUEUED] and not left[MessageStatus.SENDING]:
            break
        workers = [_send_queued(env) for _ in range(2)]
        for victim in workers if kills < 12 else []:
            # Kill each worker once it is sending: wait until the number sent moves, then a little more.
            start = len(smtp.received)
            wait_until = time.monotonic() + 30
            while len(smtp.received) == start and time.monotonic() < wait_until and victim.poll() is None:
                time.sleep(0.005)  # watching the SMTP server for the next message of this run
            time.sleep(rng.uniform(0, 0.05))  # a random point in the run, not a synchronisation
            if victim.poll() is None:
                victim.send_signal(signal.SIGKILL)
                kills += 1
        for w in workers:
            w.communicate(timeout=300)
        if left[MessageStatus.SENDING] and not left[MessageStatus.QUEUED]:
            # Only leases of killed workers are left: the next workers sweep them once they expire.
            delivery.sweep(now=utcnow() + timedelta(seconds=3))
    assert kills >= 10
    delivery.sweep(now=utcnow() + timedelta(hours=1))
    after = _statuses(account.id)
    assert after[MessageStatus.SENDING] == 0 and after[MessageStatus.QUEUED] == 0, after
    db.session.rollback()
    marked = set(
        db.session.scalars(
            select(EmailMessage.id).where(EmailMessage.account_id == account.id, EmailMessage.possibly_sent)
        )
    )
    assert after[MessageStatus.FAILED] == len(marked)  # nothing failed but what may have been sent
    # The user checks and retries the possibly sent ones: then every message has arrived.
    outbox.retry(account, all_failed=True)
    outbox.send_queued()
    received = _received(smtp)
    assert all(received[mid] >= 1 for mid in ids), [mid for mid in ids if not received[mid]][:5]
    doubled = {ids[mid] for mid, n in received.items() if n > 1}
    assert doubled <= marked, f"sent twice without a mark: {sorted(doubled - marked)[:5]}"
    print(f"kills={kills} marked={len(marked)} doubled={len(doubled)}")


def test_redis_emptied_while_mail_is_queued_and_being_sent_loses_nothing(
    make_account, smtp: SmtpServer, worker_env: dict[str, str], redis_server: test_redis.TestRedis
) -> None:
    account = make_account()
    ids = _queue(account, 300, "flush")
    worker = _send_queued(worker_env)
    deadline = time.monotonic() + 60
    while len(smtp.received) < 20 and time.monotonic() < deadline and worker.poll() is None:
        time.sleep(0.01)  # watching the SMTP server until the worker is mid-run
    redis_server.flush()
    _out, err = worker.communicate(timeout=120)
    assert worker.returncode == 0, err
    outbox.send_queued()  # whatever the flush interrupted
    received = _received(smtp)
    assert {mid: received[mid] for mid in ids} == dict.fromkeys(ids, 1)
    assert _statuses(account.id) == Counter({MessageStatus.SENT: 300})
