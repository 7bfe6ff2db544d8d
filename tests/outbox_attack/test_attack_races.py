"""The real command line on hostile files (traceback?), and cancel/retry racing a sending pass."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import EmailMessage
from webapp.models.message import MessageStatus
from webapp.services.errors import ConnectorError
from webapp.services.outgoing import outbox
from webapp.services.outgoing.sending import Draft


def test_real_cli_prints_a_traceback_on_hostile_jsonl(make_account, worker_env, tmp_path: Path, smtp) -> None:
    make_account()
    exe = Path(sys.executable).with_name("email-connector")
    files = {
        "surrogate_key": b'{"to": "a@example.test", "subject": "s", "body": "b", "key": "k\\ud800"}\n',
        "nul_attachment": b'{"to": "a@example.test", "subject": "s", "body": "b", "attachments": ["x\\u0000"]}\n',
        "deep": b"[" * 100000 + b"]" * 100000 + b"\n",
    }
    out = {}
    for name, content in files.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_bytes(content)
        r = subprocess.run(
            [str(exe), "send", "--account", "Work", "--queue", "--from-jsonl", str(path)],
            env=worker_env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        out[name] = (r.returncode, r.stderr.strip().splitlines()[-1:], "Traceback" in r.stderr)
    r = subprocess.run(
        [
            str(exe),
            "send",
            "--account",
            "Work",
            "--to",
            "a@example.test",
            "--subject",
            "s",
            "--body",
            "b",
            "--queue",
            "--send-after",
            "0001-01-01T00:00:00+05:00",
        ],
        env=worker_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out["send_after"] = (r.returncode, r.stderr.strip().splitlines()[-1:], "Traceback" in r.stderr)
    for k, v in out.items():
        print(k, v)
    assert not [k for k, v in out.items() if v[2]], out


def test_cancel_and_retry_racing_a_pass_never_send_a_draft_or_twice(make_account, make_app, smtp: SmtpServer) -> None:
    account = make_account()
    ids = [
        outbox.enqueue(account, Draft(to=f"r{n}@example.test", subject=f"M{n}", text="x"), nudge_worker=False).id
        for n in range(120)
    ]
    other = make_app()
    errors: list[BaseException] = []

    def drainer() -> None:
        try:
            with other.app_context():
                outbox.send_queued()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=drainer)
    thread.start()
    cancelled = []
    for mid in reversed(ids):
        try:
            outbox.cancel(account, mid)
            cancelled.append(mid)
        except ConnectorError:
            pass
    thread.join(60)
    assert not errors, errors
    db.session.rollback()
    statuses = {m.id: m.status for m in db.session.query(EmailMessage)}
    subjects_sent = Counter(r.rcpt_tos[0] for r in smtp.received)
    print(len(cancelled), "cancelled;", len(smtp.received), "sent")
    assert all(c == 1 for c in subjects_sent.values())
    for mid in cancelled:
        assert statuses[mid] == MessageStatus.DRAFT
    sent_rcpts = set(subjects_sent)
    for mid in cancelled:
        assert f"r{ids.index(mid)}@example.test" not in sent_rcpts, mid
    assert all(s in (MessageStatus.DRAFT, MessageStatus.SENT) for s in statuses.values()), Counter(statuses.values())


def test_queue_of_one_draft_from_eight_threads_queues_once(make_account, make_app, smtp: SmtpServer) -> None:
    from webapp.models import EmailAccount
    from webapp.services.outgoing import drafts

    account = make_account()
    draft = drafts.save(account, Draft(to="a@example.test", subject="Once", text="x"))
    draft_id, account_id = draft.id, account.id
    db.session.rollback()  # end the test's own read transaction before the threads write
    apps = [make_app() for _ in range(8)]
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def go(app) -> None:
        with app.app_context():
            acc = db.session.get(EmailAccount, account_id)
            db.session.commit()
            barrier.wait()
            try:
                drafts.queue(acc, draft_id)
                outcomes.append("queued")
            except ConnectorError as exc:
                outcomes.append(type(exc).__name__)
            except BaseException as exc:
                outcomes.append("CRASH " + repr(exc))

    threads = [threading.Thread(target=go, args=(a,)) for a in apps]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    print(Counter(outcomes))
    db.session.rollback()
    assert outcomes.count("queued") == 1, outcomes
    assert [m.status for m in db.session.query(EmailMessage)] == [MessageStatus.QUEUED]
