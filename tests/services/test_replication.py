"""Receiving that never loses, duplicates or deletes a message — against the real Dovecot."""

from __future__ import annotations

import hashlib
import json
import os
import random
import ssl
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from imapclient import IMAPClient
from sqlalchemy import func, select

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from tests.servers.pki import Pki
from webapp.extensions import db
from webapp.models import AppSetting, Delivery, EmailMessage, ErrorLog, FolderState
from webapp.services.account import accounts, errorlog
from webapp.services.errors import ConnectionFailed
from webapp.services.platform import failpoints
from webapp.services.reading import messages
from webapp.services.receiving import fetching, fetchlock
from webapp.services.receiving.fetchlock import AlreadyRunning

ROOT = Path(__file__).resolve().parents[2]


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _server(dovecot: Dovecot, pki: Pki, folder: str = "INBOX") -> tuple[int, dict[int, str]]:
    """(UIDVALIDITY, {uid: sha256 of BODY[]}) read with raw imapclient: the truth to compare with."""
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    with IMAPClient("127.0.0.1", port=dovecot.imaps_port, ssl=True, ssl_context=context) as client:
        client.login("alice", "alice-mail-pw")
        info = client.select_folder(folder, readonly=True)
        uids = client.search(["ALL"])
        found: dict[int, str] = {}
        for start in range(0, len(uids), 500):
            for uid, data in client.fetch(uids[start : start + 500], [b"BODY.PEEK[]"]).items():
                found[int(uid)] = _sha(data[b"BODY[]"])
        return int(info[b"UIDVALIDITY"]), found


def _stored(account, folder: str = "INBOX") -> dict[int, str]:
    rows = db.session.execute(
        select(EmailMessage.uid, EmailMessage.raw_sha256).where(
            EmailMessage.account_id == account.id, EmailMessage.folder == folder
        )
    ).all()
    assert len(rows) == len({uid for uid, _ in rows}), "a UID is stored twice"
    return {int(uid): sha for uid, sha in rows}


def _update(account, **changes):
    return accounts.update(account, replace(accounts.settings_of(account), **changes))


def _corpus(count: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    corpus = generated.mix(count, seed=seed)
    for index in rng.sample(range(count), 3):  # a few big attachments (a few MB)
        big = generated.make(index, "text", seed=seed).replace(b"\r\n\r\n", b"\r\nX-Big: yes\r\n\r\n", 1)
        corpus[index] = big + (b"A" * 76 + b"\r\n") * (2_500_000 // 78)
    return corpus


def test_replicate_a_folder_in_batches_then_only_what_is_new(make_account, dovecot: Dovecot, pki: Pki) -> None:
    dovecot.deliver_many("alice", _corpus(2000))
    account = make_account(fetch_strategy="replicate", batch_size=250)
    progress: list[tuple[int, int, int]] = []
    summary = fetching.fetch(account, lambda p: progress.append((p.done, p.total, p.batch)))
    uidvalidity, server = _server(dovecot, pki)
    assert (summary.stored, summary.failed, summary.total) == (2000, 0, 2000)
    assert summary.quarantined == sum(1 for raw in _corpus(2000) if b"Broken multipart" in raw)
    assert _stored(account) == server
    assert progress[-1] == (2000, 2000, 8)
    state = db.session.scalar(select(FolderState).where(FolderState.account_id == account.id))
    assert (state.uidvalidity, state.last_uid) == (uidvalidity, max(server))
    assert db.session.scalar(select(func.count()).where(EmailMessage.body_state != "parsed")) == 0

    again = fetching.fetch(account)
    assert (again.stored, again.total) == (0, 0)
    dovecot.deliver_many("alice", [generated.make(5000 + i, "html") for i in range(3)])
    newer = fetching.fetch(account)
    assert newer.stored == 3
    assert _stored(account) == _server(dovecot, pki)[1]


@pytest.mark.parametrize("order", ["newest", "oldest"])
def test_latest_n_takes_exactly_the_newest_or_oldest(make_account, dovecot: Dovecot, pki: Pki, order: str) -> None:
    dovecot.deliver_many("alice", generated.mix(30))
    account = make_account(fetch_count=7, fetch_order=order, batch_size=3)
    fetching.fetch(account)
    _uv, server = _server(dovecot, pki)
    uids = sorted(server)
    expected = uids[-7:] if order == "newest" else uids[:7]
    assert sorted(_stored(account)) == expected
    dovecot.deliver_many("alice", generated.mix(4, seed=9))
    added = fetching.fetch(account)
    _uv, server = _server(dovecot, pki)
    uids = sorted(server)
    if order == "newest":
        assert added.stored == 4 and sorted(_stored(account)) == sorted(set(expected) | set(uids[-7:]))
    else:
        assert added.stored == 0 and sorted(_stored(account)) == expected


def test_several_folders_and_a_new_uidvalidity(make_account, dovecot: Dovecot, pki: Pki) -> None:
    first = generated.mix(12)
    dovecot.deliver_many("alice", first[:6])
    dovecot.deliver_many("alice", first[6:], folder="Archive")
    account = make_account(fetch_strategy="replicate", folders=["INBOX", "Archive"], batch_size=4)
    assert fetching.fetch(account).stored == 12
    old_validity, _ = _server(dovecot, pki, "Archive")

    # Recreate the folder on the server: same messages and one more, under a new UIDVALIDITY.
    dovecot.doveadm("mailbox", "delete", "-u", "alice", "Archive")
    dovecot.deliver_many("alice", [*first[6:], generated.make(99, "attachment")], folder="Archive")
    new_validity, server = _server(dovecot, pki, "Archive")
    assert new_validity != old_validity

    summary = fetching.fetch(account)
    assert (summary.stored, summary.relinked) == (1, 6)
    assert _stored(account, "Archive") == server
    assert db.session.scalar(select(func.count()).select_from(EmailMessage)) == 13
    (entry,) = [e for e in errorlog.entries(account) if "UIDVALIDITY" in e.message]
    assert f"from {old_validity} to {new_validity}" in entry.message
    assert fetching.fetch(account).stored == 0


def test_oversized_messages_keep_their_headers_and_a_reason(make_account, dovecot: Dovecot) -> None:
    big = generated.make(1, "attachment").replace(b"\r\n\r\n", b"\r\n\r\n" + b"x" * 200_000, 1)
    dovecot.deliver_many("alice", [generated.make(0, "text"), big])
    account = make_account(max_message_size=100_000)
    summary = fetching.fetch(account)
    assert (summary.stored, summary.quarantined) == (2, 1)
    (kept,) = [m for m in messages.listing(account) if m.body_state == "oversize"]
    assert kept.size == len(big) and kept.subject == "Attachment message 1"
    assert kept.parse_error.startswith(f"over the size limit: {len(big)} bytes > 100000")
    assert messages.raw_bytes(kept) == big[: big.index(b"\r\n\r\n") + 4]


def test_after_fetch_actions_are_opt_in_and_follow_the_commit(
    app: Flask, make_account, dovecot: Dovecot, pki: Pki
) -> None:
    dovecot.deliver_many("alice", generated.mix(6))
    account = make_account(after_fetch="seen", batch_size=2)
    fetching.fetch(account)
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    with IMAPClient("127.0.0.1", port=dovecot.imaps_port, ssl=True, ssl_context=context) as client:
        client.login("alice", "alice-mail-pw")
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search(["ALL"]))
    assert len(flags) == 6 and all(b"\\Seen" in f for f in flags.values())

    _update(account, after_fetch="move", after_fetch_folder="Done")
    dovecot.deliver_many("alice", generated.mix(3, seed=4))
    with pytest.raises(failpoints.FailPoint):  # stored and committed; the MOVE ran but was not recorded
        fetching.fetch(account, failpoints=failpoints.FailPoints({"server_action": (1, "raise")}))
    fetching.fetch(account)  # finishes the pending actions
    assert db.session.scalar(select(func.count()).where(EmailMessage.pending_action.is_not(None))) == 0
    _uv, inbox = _server(dovecot, pki)
    _uv, done = _server(dovecot, pki, "Done")
    assert len(inbox) == 6 and len(done) == 3
    assert db.session.scalar(select(func.count()).select_from(EmailMessage)) == 9

    _update(account, after_fetch="delete")  # applies to what is fetched from now on
    dovecot.deliver_many("alice", generated.mix(2, seed=6))
    fetching.fetch(account)
    assert _server(dovecot, pki)[1] == inbox
    assert db.session.scalar(select(func.count()).select_from(EmailMessage)) == 11


def test_a_second_fetch_of_the_same_account_reports_already_running(make_account, dovecot: Dovecot) -> None:
    account = make_account()
    with fetchlock.hold(account.id), pytest.raises(AlreadyRunning, match="already running"):
        fetching.fetch(account)
    assert fetching.fetch(account).stored == 0  # released


STEPS = ("downloaded", "before_commit", "after_commit")


def test_interrupted_after_every_step_then_resumed_is_identical(
    app: Flask, make_account, dovecot: Dovecot, pki: Pki
) -> None:
    dovecot.deliver_many("alice", generated.mix(9))
    _uv, server = _server(dovecot, pki)
    account = make_account(fetch_strategy="replicate", batch_size=2)
    for step in STEPS:
        for hit in (1, 3, 5):
            try:
                fetching.fetch(account, failpoints=failpoints.FailPoints({step: (hit, "raise")}))
            except failpoints.FailPoint:
                pass
            assert set(_stored(account).items()) <= set(server.items())
    fetching.fetch(account)
    assert _stored(account) == server
    before = db.session.scalar(select(func.count()).select_from(EmailMessage))
    assert fetching.fetch(account).stored == 0
    assert db.session.scalar(select(func.count()).select_from(EmailMessage)) == before == 9


def test_sigkill_at_seeded_points_loses_nothing_and_records_every_delivery_once(
    make_account, dovecot: Dovecot, pki: Pki, worker_env: dict[str, str]
) -> None:
    dovecot.deliver_many("alice", generated.mix(400, seed=5))
    _uv, server = _server(dovecot, pki)
    account = make_account(fetch_strategy="replicate", batch_size=20)
    rng = random.Random(2026)
    env = {**worker_env, "PYTHONPATH": str(ROOT)}
    kills = 0
    for _run in range(10):
        point = rng.choice(["downloaded", "before_commit", "after_commit"])
        env["TESTKIT_FAILPOINTS"] = json.dumps({point: [rng.randint(1, 3), "kill"]})
        done = subprocess.run([sys.executable, "-m", "tests.fetchrun", str(account.id), "tests.fetchrun.record_batch"],
                              env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
        kills += done.returncode == -9
        db.session.rollback()
    assert kills == 10
    env.pop("TESTKIT_FAILPOINTS")
    final = subprocess.run([sys.executable, "-m", "tests.fetchrun", str(account.id), "tests.fetchrun.record_batch"],
                           env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert final.returncode == 0, final.stderr
    db.session.rollback()
    assert _stored(account) == server
    state = db.session.scalar(select(FolderState).where(FolderState.account_id == account.id))
    assert state.last_uid == max(server)
    seen = db.session.scalars(select(AppSetting.key).where(AppSetting.key.like("seen:%"))).all()
    ids = set(db.session.scalars(select(EmailMessage.id)).all())
    assert sorted(int(k.split(":")[1]) for k in seen) == sorted(ids)  # each message seen exactly once
    deliveries = db.session.scalars(select(Delivery).where(Delivery.event == "fetch")).all()
    assert len({d.delivery_id for d in deliveries}) == len(deliveries) == 400 // 20
    assert all(d.status == "delivered" for d in deliveries)


def test_pop3_dropped_during_retr_loses_nothing_and_sends_no_dele(make_account, dovecot: Dovecot, pki: Pki) -> None:
    corpus = generated.mix(25, seed=8)
    dovecot.deliver_many("alice", corpus)
    proxy = FaultProxy(dovecot.pop3s_port).start()
    try:
        account = make_account(incoming_protocol="pop3", incoming_security="tls", incoming_port=proxy.port,
                               fetch_strategy="replicate", batch_size=5, timeout=5)  # fmt: skip
        rng = random.Random(11)
        drops = 0
        for _attempt in range(40):
            proxy.set("pass", reset_after=rng.randint(2_000, 40_000))
            try:
                fetching.fetch(account)
                break
            except ConnectionFailed as exc:
                drops += 1
                assert exc.kind in ("reset", "network", "protocol", "timeout", "tls"), str(exc)
        assert drops >= 3
        proxy.set("pass")
        fetching.fetch(account)
    finally:
        proxy.stop()
    stored = sorted(db.session.scalars(select(EmailMessage.raw_sha256)).all())
    assert stored == sorted(_sha(raw) for raw in corpus)
    assert len(_server(dovecot, pki)[1]) == 25  # nothing deleted


def test_pop3_delete_after_fetch_is_opt_in(make_account, dovecot: Dovecot, pki: Pki) -> None:
    dovecot.deliver_many("alice", generated.mix(5))
    keep = make_account(
        name="Keep", incoming_protocol="pop3", incoming_security="tls", incoming_port=dovecot.pop3s_port
    )
    fetching.fetch(keep)
    assert len(_server(dovecot, pki)[1]) == 5
    delete = make_account(name="Delete", incoming_protocol="pop3", incoming_security="tls",
                          incoming_port=dovecot.pop3s_port, after_fetch="delete")  # fmt: skip
    assert fetching.fetch(delete).stored == 5
    assert _server(dovecot, pki)[1] == {}
    assert db.session.scalar(select(func.count()).where(EmailMessage.pending_action.is_not(None))) == 0


def test_a_job_for_an_account_already_being_fetched_fails_with_already_running(make_account, dovecot) -> None:
    from rq import SimpleWorker
    from rq.serializers import JSONSerializer

    from webapp.services.platform import queues
    from webapp.services.platform.redisconn import get_redis
    from webapp.services.receiving import fetchjobs

    account = make_account()
    job_id = fetchjobs.enqueue(account)
    with fetchlock.hold(account.id):
        SimpleWorker([queues.queue(queues.FETCH)], connection=get_redis(), serializer=JSONSerializer).work(burst=True)
    status = fetchjobs.status(job_id)
    assert status.state == "failed" and status.error == "a fetch of this account is already running"


@pytest.mark.parametrize(
    ("over", "kind"),
    [
        ({"password": "wrong password"}, "auth"),
        ({"folders": ["No/Such/Folder"], "folder": "No/Such/Folder"}, "folder"),
    ],
)
def test_server_errors_end_the_fetch_with_a_log_entry(make_account, dovecot: Dovecot, over, kind) -> None:
    account = make_account(**over)
    with pytest.raises(ConnectionFailed) as info:
        fetching.fetch(account)
    assert info.value.kind == kind
    assert db.session.scalar(select(func.count()).select_from(ErrorLog)) == 1
    with fetchlock.hold(account.id):  # released: it can be taken again (AlreadyRunning otherwise)
        pass
    assert os.environ.get("TESTKIT_FAILPOINTS") is None
