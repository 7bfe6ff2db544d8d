"""``email-connector send``, ``fetch`` and ``messages list``, exactly as documented."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from webapp.services.account import errorlog
from webapp.services.receiving import fetchjobs


def test_send_exits_0_only_when_the_server_accepted_it(
    run: Callable[..., Result], make_account, smtp: SmtpServer, tmp_path: Path
) -> None:
    make_account()
    body = tmp_path / "body.txt"
    body.write_text("Hallo ✓\n", encoding="utf-8")
    html = tmp_path / "body.html"
    html.write_text("<p>Hallo</p>", encoding="utf-8")
    attachment = tmp_path / "data.bin"
    attachment.write_bytes(b"\x00\x01binary")
    sent = run(
        "send", "--account", "Work", "--to", "alice@example.test;bob@example.test", "--cc", "carol@example.test",
        "--bcc", "dave@example.test", "--subject", "Grüße", "--body-file", str(body), "--html-file", str(html),
        "--attach", str(attachment),
    )  # fmt: skip
    assert sent.exit_code == 0, sent.output
    assert sent.stdout.startswith("sent: message ")
    (received,) = smtp.received
    assert len(received.rcpt_tos) == 4 and b'filename="data.bin"' in received.data
    as_json = run("send", "--account", "Work", "--to", "a@b.test", "--subject", "J", "--body", "y", "--json")
    assert as_json.exit_code == 0, as_json.output
    row = json.loads(as_json.stdout)  # JSON only on stdout, like the other commands
    assert set(row) == {"id", "message_id", "status"} and row["status"] == "SENT" and isinstance(row["id"], int)
    assert "@" in row["message_id"] and not row["message_id"].startswith("<")

    bad = run("send", "--account", "Work", "--to", "nobody", "--subject", "x", "--body", "y")
    assert bad.exit_code == 1 and "'nobody' is not a valid email address" in bad.stderr
    assert run("send", "--account", "Work", "--to", "a@b.test", "--subject", "x").exit_code == 1
    both = run(
        "send", "--account", "Work", "--to", "a@b.test", "--subject", "x", "--body", "y", "--body-file", str(body)
    )
    assert both.exit_code == 1 and "not both" in both.stderr
    smtp.fail_with = "554 5.7.1 no thanks"
    refused = run("send", "--account", "Work", "--to", "a@b.test", "--subject", "x", "--body", "y")
    assert refused.exit_code == 1 and "554 5.7.1 no thanks" in refused.stderr
    assert run("send", "--account", "Nope", "--to", "a@b.test", "--subject", "x", "--body", "y").exit_code == 1


def test_fetch_inline_and_messages_list_json(run: Callable[..., Result], make_account, dovecot: Dovecot) -> None:
    delivered = [generated.make(0, "attachment"), generated.make(1, "non_ascii"), generated.make(2, "text")]
    for raw in delivered:
        dovecot.deliver("alice", raw)
    make_account()
    fetched = run("fetch", "Work", "--inline", "--json")
    assert fetched.exit_code == 0, fetched.output
    summary = {"stored": 3, "skipped": 0, "quarantined": 0, "failed": 0, "total_on_server": 3}
    assert json.loads(fetched.stdout) == summary
    assert "fetched 3/3" in fetched.stderr
    again = run("fetch", "Work", "--inline")
    assert again.stdout.strip() == "stored 0, skipped 3, quarantined 0, failed 0, total on server 3"
    assert "of 3 on the server" not in again.stderr  # all of them: nothing to say

    listed = run("messages", "list", "--account", "Work", "--json")
    assert listed.exit_code == 0
    rows = json.loads(listed.stdout)
    assert [r["subject"] for r in rows] == ["Text message 2", "Grüße aus Köln — 東京 1 ✉", "Attachment message 0"]
    first = rows[2]
    assert set(first) >= {"id", "folder", "uid", "message_id", "subject", "from", "to", "cc", "date", "received_at",
                          "size", "sha256", "seen", "attachments"}  # fmt: skip
    assert isinstance(first["id"], int) and first["folder"] == "INBOX" and first["uid"] == 1
    assert first["message_id"].endswith("@example.test") and not first["message_id"].startswith("<")
    assert first["from"] == [{"name": "Sender 0", "address": "sender0@example.test"}]
    assert first["to"] == [{"name": "", "address": "alice@example.test"}] and first["cc"] == []
    assert first["date"] == "2026-01-01T00:00:00Z" and first["received_at"].endswith("Z")
    assert first["size"] == len(delivered[0]) and first["sha256"] == hashlib.sha256(delivered[0]).hexdigest()
    assert first["seen"] is False
    (attachment,) = first["attachments"]
    assert attachment["filename"] == "data-0.bin" and attachment["inline"] is False
    assert attachment["content_type"] == "application/octet-stream" and len(attachment["sha256"]) == 64

    limited = json.loads(run("messages", "list", "--account", "Work", "--limit", "1", "--json").stdout)
    assert len(limited) == 1
    assert len(json.loads(run("messages", "list", "--account", "Work", "--limit", "0", "--json").stdout)) == 3
    assert json.loads(run("messages", "list", "--account", "Work", "--folder", "Sent", "--json").stdout) == []


def test_fetch_wait_fails_at_once_without_a_live_worker(run: Callable[..., Result], make_account) -> None:
    make_account()
    result = run("fetch", "Work", "--wait")
    assert result.exit_code == 1 and "no worker is listening on the fetch queue" in result.stderr
    queued = run("fetch", "Work", "--json")
    assert queued.exit_code == 0
    row = json.loads(queued.stdout)
    assert len(row["job_id"]) > 10 and row["account"] == "Work" and row["state"] == "queued"
    assert row["worker"] is False
    # Not a bare job id: what was queued, and that it waits for a worker (issue 10, item 19).
    again = run("fetch", "Work")
    assert again.exit_code == 0
    assert again.stdout.strip() == (
        f"queued a fetch of Work (job {row['job_id']}); no worker is running: it runs once one starts "
        "(`make run`, or `email-connector worker`)"
    )


def test_fetch_wait_with_a_real_worker(make_account, dovecot: Dovecot, worker, worker_env: dict[str, str]) -> None:
    for raw in generated.mix(6):
        dovecot.deliver("alice", raw)
    account = make_account()
    exe = Path(sys.executable).with_name("email-connector")
    done = subprocess.run([str(exe), "fetch", "Work", "--wait", "--json"], env=worker_env, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr + worker.log.read_text()
    assert json.loads(done.stdout) == {"stored": 6, "skipped": 0, "quarantined": 1, "failed": 0, "total_on_server": 6}

    queued = subprocess.run([str(exe), "fetch", "Work"], env=worker_env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    assert queued.stdout.startswith("queued a fetch of Work (job ")
    assert queued.stdout.rstrip().endswith(
        "follow it with: email-connector fetch Work --wait, or on the account's mailbox page"
    )
    assert fetchjobs.wait(queued.stdout.split("(job ")[1].split(")")[0], 60).state == "finished"

    from dataclasses import replace

    from webapp.services.account import accounts

    accounts.update(account, replace(accounts.settings_of(account), password="wrong password"))
    failed = subprocess.run([str(exe), "fetch", "Work", "--wait"], env=worker_env, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert failed.returncode == 1 and "authentication failed" in failed.stderr
    assert errorlog.entries(account)[0].operation == "fetch"


def test_accounts_update_and_folders(run: Callable[..., Result], make_account, dovecot: Dovecot) -> None:
    dovecot.deliver_many("alice", generated.mix(2))
    dovecot.deliver_many("alice", generated.mix(3), folder="Archive")
    make_account()
    updated = run(
        "accounts", "update", "Work", "--strategy", "replicate", "--order", "oldest", "--count", "7",
        "--batch-size", "40", "--folder", "INBOX", "--folder", "Archive", "--max-size", "1000000",
        "--every", "15", "--after-fetch", "move:Done",
    )  # fmt: skip
    assert updated.exit_code == 0, updated.output
    (row,) = json.loads(run("accounts", "list", "--json").stdout)
    assert (row["strategy"], row["order"], row["count"], row["batch_size"]) == ("replicate", "oldest", 7, 40)
    assert (row["folders"], row["max_size"], row["every"], row["after_fetch"]) == (
        ["INBOX", "Archive"],
        1000000,
        15,
        "move:Done",
    )
    assert run("accounts", "update", "Work", "--batch-size", "50").exit_code == 0
    (row,) = json.loads(run("accounts", "list", "--json").stdout)
    assert row["batch_size"] == 50 and row["folders"] == ["INBOX", "Archive"]  # the rest kept
    bad = run("accounts", "update", "Work", "--after-fetch", "move")
    assert bad.exit_code == 1 and "none, seen, move:FOLDER or delete" in bad.stderr
    assert run("accounts", "update", "Work", "--folder", "bad\nname").exit_code == 1

    listed = run("folders", "Work", "--json")
    assert listed.exit_code == 0, listed.output
    folders = {f["name"]: f for f in json.loads(listed.stdout)}
    assert folders["INBOX"]["messages"] == 2 and folders["Archive"]["messages"] == 3
    assert folders["Archive"]["delimiter"] == "." and isinstance(folders["Archive"]["flags"], list)
    assert run("folders", "Nope").exit_code == 1

    assert run("accounts", "update", "Work", "--after-fetch", "none").exit_code == 0
    fetched = run("fetch", "Work", "--inline", "--json")
    assert json.loads(fetched.stdout) == {
        "stored": 5,
        "skipped": 0,
        "quarantined": 0,
        "failed": 0,
        "total_on_server": 5,
    }


def test_the_summary_says_when_only_the_newest_n_were_fetched(run, make_account, dovecot: Dovecot) -> None:
    dovecot.deliver_many("alice", generated.mix(8))
    make_account(fetch_count=3)
    fetched = run("fetch", "Work", "--inline")
    assert fetched.exit_code == 0 and fetched.stdout.startswith("stored 3, ")
    assert "fetched the newest 3 of 8 on the server" in fetched.stderr and "--count N" in fetched.stderr
    as_json = run("fetch", "Work", "--inline", "--json")
    assert json.loads(as_json.stdout)["total_on_server"] == 8


def test_fetch_runs_lists_the_history(run, make_account, dovecot: Dovecot) -> None:
    dovecot.deliver_many("alice", generated.mix(4))
    make_account()
    assert run("fetch", "Work", "--inline").exit_code == 0
    assert run("fetch", "Work", "--inline").exit_code == 0
    listed = run("fetch", "runs", "Work", "--limit", "1", "--json")
    assert listed.exit_code == 0, listed.output
    (newest,) = json.loads(listed.stdout)
    assert (newest["status"], newest["trigger"], newest["stored"], newest["skipped"]) == ("finished", "command", 0, 4)
    assert newest["total_on_server"] == 4 and newest["started_at"].endswith("Z")
    text = run("fetch", "runs", "Work")
    assert text.exit_code == 0 and text.stdout.count("finished") == 2
    assert run("fetch", "runs", "Nope").exit_code == 1
    assert "runs NAME" in run("fetch", "--help").output


def test_hints_quote_names_and_a_failure_is_said_once(run, make_account, dovecot: Dovecot, worker) -> None:
    make_account(name="Alice Work", incoming_port=1)
    queued = run("fetch", "Alice Work")
    assert "email-connector fetch 'Alice Work' --wait" in queued.stdout, queued.stdout
    tested = run("accounts", "test", "Alice Work")
    assert tested.exit_code == 1 and tested.stderr.count("refused the connection") == 1, tested.stderr
    missing = run("messages", "list", "--account", "Alice Work", "--folder", "Nope", "--json")
    assert missing.exit_code == 1 and "no folder 'Nope'" in missing.stderr and missing.stdout == ""
