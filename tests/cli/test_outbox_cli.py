"""``send --queue``, ``send --queue --from-jsonl``, ``send-queued`` and ``outbox list|retry|cancel``."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import Result

from tests.servers.smtp import SmtpServer


def _lines(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_queue_then_send_queued_then_list(run: Callable[..., Result], make_account, smtp: SmtpServer) -> None:
    make_account()
    queued = run("send", "--account", "Work", "--to", "a@example.test", "--subject", "Q", "--body", "x", "--queue")
    assert queued.exit_code == 0, queued.output
    assert queued.stdout.startswith("queued: message ") and smtp.received == []
    listed = json.loads(run("outbox", "list", "--account", "Work", "--status", "queued", "--json").stdout)
    assert [(m["subject"], m["status"], m["attempts"]) for m in listed] == [("Q", "QUEUED", 0)]
    drained = run("send-queued", "--json")
    assert drained.exit_code == 0, drained.output
    assert json.loads(drained.stdout)["sent"] == 1 and len(smtp.received) == 1
    sent = json.loads(run("outbox", "list", "--account", "Work", "--status", "sent", "--json").stdout)
    assert sent[0]["message_id"] == listed[0]["message_id"] and sent[0]["sent_at"]
    assert run("outbox", "list", "--account", "Work", "--status", "bogus").exit_code == 2


def test_send_after_needs_a_zone_and_waits(run: Callable[..., Result], make_account, smtp: SmtpServer) -> None:
    make_account()
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    args = ("send", "--account", "Work", "--to", "a@example.test", "--subject", "Later", "--body", "x", "--queue")
    scheduled = run(*args, "--send-after", later, "--json")
    assert scheduled.exit_code == 0, scheduled.output
    naive = run(*args, "--send-after", "2030-01-01T09:00:00")
    assert naive.exit_code == 1 and "time zone" in naive.stderr
    garbage = run(*args, "--send-after", "tomorrow")
    assert garbage.exit_code == 1 and "not an ISO time" in garbage.stderr
    without_queue = run(*args[:-1], "--send-after", later)
    assert without_queue.exit_code == 1 and "go with --queue" in without_queue.stderr
    assert json.loads(run("send-queued", "--json").stdout)["sent"] == 0 and smtp.received == []


def test_a_jsonl_file_queues_all_or_nothing_and_a_rerun_skips_known_keys(
    run: Callable[..., Result], make_account, smtp: SmtpServer, tmp_path: Path
) -> None:
    make_account()
    (tmp_path / "report.pdf").write_bytes(b"%PDF-1.4 x")
    rows: list[object] = [
        {"to": "a@example.test", "subject": "One", "body": "1", "key": "k1", "attachments": ["report.pdf"]},
        {"to": ["b@example.test", "c@example.test"], "cc": "d@example.test", "reply_to": "r@example.test",
         "subject": "Two", "html": "<p>2</p>", "key": "k2"},
        {"to": "e@example.test", "subject": "Three", "body": "3"},
    ]  # fmt: skip
    first = run(
        "send", "--account", "Work", "--queue", "--from-jsonl", str(_lines(tmp_path / "m.jsonl", rows)), "--json"
    )
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout) == {"queued": 3, "skipped": 0}
    again = run("send", "--account", "Work", "--queue", "--from-jsonl", str(tmp_path / "m.jsonl"), "--json")
    assert json.loads(again.stdout) == {"queued": 1, "skipped": 2}  # the keyless line is queued again
    bad_rows: list[object] = [{"to": "f@example.test", "subject": "ok", "body": "x"}, {"to": "g@example.test"}]
    bad = run("send", "--account", "Work", "--queue", "--from-jsonl", str(_lines(tmp_path / "bad.jsonl", bad_rows)))
    assert bad.exit_code == 1 and "line 2" in bad.stderr and "nothing was queued" in bad.stderr
    for content, reason in (
        ("{not json}\n", "line 1: not a JSON object"),
        ('["a list"]\n', "line 1: not a JSON object"),
        ('{"to": "a@example.test", "subject": "s", "body": "b", "colour": "red"}\n', "unknown key(s) colour"),
        ('{"to": "a@example.test", "subject": "s", "body": "b", "attachments": ["nope.bin"]}\n', "nope.bin"),
        ('{"to": "a@example.test", "subject": "s\\r\\nBcc: x@evil.test", "body": "b"}\n', "line 1: Subject"),
    ):
        path = tmp_path / "one.jsonl"
        path.write_text(content, encoding="utf-8")
        refused = run("send", "--account", "Work", "--queue", "--from-jsonl", str(path))
        assert refused.exit_code == 1 and reason in refused.stderr, (content, refused.stderr)
    assert len(json.loads(run("outbox", "list", "--account", "Work", "--json").stdout)) == 4
    assert json.loads(run("send-queued", "--json").stdout)["sent"] == 4
    assert sorted(len(r.rcpt_tos) for r in smtp.received) == [1, 1, 1, 3]
    two = next(r for r in smtp.received if len(r.rcpt_tos) == 3)
    assert b"Reply-To: r@example.test" in two.data
    one = next(r for r in smtp.received if b"Subject: One" in r.data)
    assert b'filename="report.pdf"' in one.data


def test_retry_and_cancel(run: Callable[..., Result], make_account, smtp: SmtpServer) -> None:
    make_account()
    smtp.fail_with = "550 5.7.1 no"
    run("send", "--account", "Work", "--to", "a@example.test", "--subject", "F", "--body", "x", "--queue")
    drained = run("send-queued")
    assert "failed 1" in drained.stdout and "550 5.7.1 no" in drained.stderr
    (failed,) = json.loads(run("outbox", "list", "--account", "Work", "--status", "failed", "--json").stdout)
    assert "550" in failed["last_error"]
    assert run("outbox", "retry").exit_code == 1
    smtp.fail_with = None
    retried = run("outbox", "retry", str(failed["id"]))
    assert retried.exit_code == 0 and "1 message" in retried.stdout
    assert json.loads(run("send-queued", "--json").stdout)["sent"] == 1
    run("send", "--account", "Work", "--to", "a@example.test", "--subject", "C", "--body", "x", "--queue")
    (queued,) = json.loads(run("outbox", "list", "--account", "Work", "--json").stdout)
    assert run("outbox", "cancel", str(queued["id"])).exit_code == 0
    assert (
        json.loads(run("outbox", "list", "--account", "Work", "--status", "draft", "--json").stdout)[0]["id"]
        == queued["id"]
    )
    again = run("outbox", "cancel", str(queued["id"]))
    assert again.exit_code == 1 and "only queued or failed" in again.stderr
    assert run("outbox", "cancel", "999999").exit_code == 1
    assert run("outbox", "retry", "--all-failed").exit_code == 0
