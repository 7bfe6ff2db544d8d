"""Fetching the latest N messages over IMAP and POP3 from the test kit's Dovecot."""

from __future__ import annotations

import hashlib
import poplib
import ssl
from pathlib import Path

import pytest
from imapclient import IMAPClient
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import text

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from tests.servers.pki import Pki
from tests.servers.ports import refused_port
from webapp import connector
from webapp.extensions import db
from webapp.models import Blob, EmailMessage
from webapp.services.account import errorlog
from webapp.services.errors import ConnectionFailed
from webapp.services.platform import queues
from webapp.services.platform.redisconn import get_redis
from webapp.services.reading import messages
from webapp.services.receiving import fetching, fetchjobs


def _imap_flags(dovecot: Dovecot, pki: Pki) -> dict[int, tuple[bytes, ...]]:
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    with IMAPClient("127.0.0.1", port=dovecot.imaps_port, ssl=True, ssl_context=context) as client:
        client.login("alice", "alice-mail-pw")
        client.select_folder("INBOX", readonly=True)
        return dict(client.get_flags(client.search(["ALL"])))


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def test_imap_fetches_exactly_the_latest_n_and_twice_stores_nothing_twice(
    make_account, dovecot: Dovecot, pki: Pki
) -> None:
    delivered = generated.mix(8)
    for raw in delivered:
        dovecot.deliver("alice", raw)
    account = make_account(fetch_count=5)
    done: list[tuple[int, int]] = []

    summary = fetching.fetch(account, lambda p: done.append((p.done, p.total)))

    assert (summary.stored, summary.skipped, summary.failed, summary.total) == (5, 0, 0, 5)
    assert summary.quarantined == 1  # message 5 of the mix is a multipart without its boundary
    assert done[-1] == (5, 5)
    stored = messages.listing(account, limit=0)
    assert sorted(m.raw_sha256 for m in stored) == sorted(_sha(r) for r in delivered[3:])
    assert sorted(m.uid for m in stored) == [4, 5, 6, 7, 8]
    for message in stored:
        assert _sha(messages.raw_bytes(message)) == message.raw_sha256
    assert all(b"\\Seen" not in flags for flags in _imap_flags(dovecot, pki).values())

    again = fetching.fetch(account)
    assert (again.stored, again.skipped) == (0, 5)
    dovecot.deliver("alice", generated.make(100, "attachment"))
    newer = fetching.fetch(account)
    assert (newer.stored, newer.skipped) == (1, 4)
    assert db.session.query(EmailMessage).count() == 6


def test_malformed_messages_are_kept_raw_with_the_reason(make_account, dovecot: Dovecot) -> None:
    broken = [generated.make(i, "malformed") for i in (5, 11, 17)]
    for raw in broken:
        dovecot.deliver("alice", raw)
    dovecot.deliver("alice", b"\xff\xfe\x00garbage without any header\r\n")
    account = make_account()
    summary = fetching.fetch(account)
    assert summary.stored == 4
    stored = {m.raw_sha256: m for m in messages.listing(account, limit=0)}
    multipart = stored[_sha(broken[0])]
    assert multipart.parse_error and "broken MIME structure" in multipart.parse_error
    assert "just text, no parts" in multipart.text_body
    charset = stored[_sha(broken[1])]
    assert "unknown charset 'x-no-such-charset'" in charset.defects
    for message in stored.values():
        assert _sha(messages.raw_bytes(message)) == message.raw_sha256


def test_replicating_with_blobs_in_the_database_keeps_every_byte_there(app, make_account, dovecot: Dovecot) -> None:
    # With the database blob store the download cannot run ahead in a thread (only the fetch's own
    # transaction may write blobs): every batch must still be stored exactly, parts included.
    app.config["BLOB_STORE"] = "database"
    # Bytes no other test stores, so the blob folder (shared by the session) cannot already hold them.
    delivered = [b"X-Test: blobs in the database %d\r\n" % i + raw for i, raw in enumerate(generated.mix(14, seed=9))]
    dovecot.deliver_many("alice", delivered)
    account = make_account(fetch_strategy="replicate", batch_size=4)

    summary = fetching.fetch(account)

    assert (summary.stored, summary.failed) == (14, 0)
    stored = messages.listing(account, limit=0)
    assert sorted(m.raw_sha256 for m in stored) == sorted(_sha(r) for r in delivered)
    parts = [a for m in stored for a in m.attachments]
    assert parts, "the mix has attachments"
    in_database = {blob.sha256: blob.data for blob in db.session.query(Blob)}
    for message in stored:
        assert _sha(in_database[message.raw_sha256]) == message.raw_sha256
    assert all(_sha(in_database[a.sha256]) == a.sha256 for a in parts)
    folder = Path(app.instance_path) / "blobs"
    assert not [m for m in stored if (folder / m.raw_sha256[:2] / m.raw_sha256).exists()], "none in the folder"


DOTTED = b"From: a@example.test\r\nSubject: dots\r\n\r\n.leading dot\r\n..two dots\r\n.\r\na line\r\n. \r\nend\r\n"


def test_pop3_fetches_the_last_n_by_uidl_and_never_deletes(make_account, dovecot: Dovecot, pki: Pki) -> None:
    delivered = [*generated.mix(6, seed=3), DOTTED]  # lines starting with "." are dot-stuffed by the server
    for raw in delivered:
        dovecot.deliver("alice", raw)
    account = make_account(incoming_protocol="pop3", incoming_security="tls", incoming_port=dovecot.pop3s_port,
                           fetch_count=4)  # fmt: skip
    summary = fetching.fetch(account)
    assert (summary.stored, summary.skipped) == (4, 0)
    stored = messages.listing(account, limit=0)
    assert sorted(m.raw_sha256 for m in stored) == sorted(_sha(r) for r in delivered[3:])
    assert all(m.uidl and m.uid is None and m.folder == "INBOX" for m in stored)
    assert fetching.fetch(account).stored == 0
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    pop = poplib.POP3_SSL("127.0.0.1", dovecot.pop3s_port, context=context)
    try:
        pop.user("alice")
        pop.pass_("alice-mail-pw")
        assert pop.stat()[0] == 7  # nothing was deleted
    finally:
        pop.quit()


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_each_fetch_failure_has_its_own_message_and_error_log_entry(
    make_account, dovecot: Dovecot, pki: Pki, protocol: str
) -> None:
    port = dovecot.imaps_port if protocol == "imap" else dovecot.pop3s_port
    blackhole = FaultProxy(port, mode="blackhole").start()
    try:
        cases = [
            ("auth", {"password": "wrong password"}, "authentication failed"),
            ("refused", {"incoming_port": refused_port()}, "refused the connection"),
            ("tls", {"ca_cert_pem": pki.other_ca_pem.read_text()}, "certificate"),
            ("timeout", {"incoming_port": blackhole.port, "timeout": 1}, "did not answer within 1 seconds"),
        ]
        for index, (kind, over, text) in enumerate(cases):
            values = {"incoming_protocol": protocol, "incoming_port": port, **over}
            account = make_account(name=f"{protocol}{index}", **values)
            with pytest.raises(ConnectionFailed) as info:
                fetching.fetch(account)
            assert info.value.kind == kind, (kind, str(info.value))
            (entry,) = errorlog.entries(account)
            assert entry.operation == "fetch" and text in entry.message
            assert "wrong password" not in entry.message + entry.detail
    finally:
        blackhole.stop()


@pytest.mark.parametrize(
    ("reply", "text"),
    [
        (b"{tag} BAD Error in IMAP command UID FETCH: injected\r\n", "BAD Error in IMAP command UID FETCH"),
        (b"{tag} NO [SERVERBUG] injected\r\n", "NO [SERVERBUG] injected"),
        (b"* BYE injected shutdown\r\n", "the server closed the connection: injected shutdown"),
    ],
    ids=["BAD", "NO", "BYE"],
)
def test_a_batch_answered_bad_no_or_bye_ends_the_fetch_logged_and_a_rerun_completes_it(
    make_account, dovecot: Dovecot, reply: bytes, text: str
) -> None:
    # The test kit's proxy answers the second batch's FETCH itself, as a server would in trouble; the
    # rest of the session is the real Dovecot over plain IMAP.
    delivered = [b"X-Test: %s %d\r\n" % (reply[:8], i) + raw for i, raw in enumerate(generated.mix(6, seed=5))]
    dovecot.deliver_many("alice", delivered)
    proxy = FaultProxy(dovecot.imap_port).start()
    try:
        proxy.answer(b"UID FETCH 3:4 (UID FLAGS INTERNALDATE BODY.PEEK[])", reply)
        account = make_account(incoming_security="none", incoming_port=proxy.port, fetch_strategy="replicate",
                               batch_size=2)  # fmt: skip
        with pytest.raises(ConnectionFailed) as info:
            fetching.fetch(account)
        assert text in str(info.value)
        (entry,) = errorlog.entries(account)
        assert entry.operation == "fetch" and text in entry.message
        assert len(proxy.answered) == 1  # asked once: no retry loop against a server in trouble
        first = messages.listing(account, limit=0)
        assert sorted(m.raw_sha256 for m in first) == sorted(_sha(r) for r in delivered[:2])

        proxy.answers.clear()
        again = fetching.fetch(account)
        assert (again.stored, again.failed) == (4, 0)
        stored = messages.listing(account, limit=0)
        assert sorted(m.raw_sha256 for m in stored) == sorted(_sha(r) for r in delivered)
    finally:
        proxy.stop()


def test_a_missing_folder_is_named(make_account, dovecot: Dovecot) -> None:
    missing = make_account(name="Missing", folder="NoSuchFolder")
    with pytest.raises(ConnectionFailed, match="NoSuchFolder"):
        fetching.fetch(missing)


def test_retrieve_email_messages_queues_one_job_per_account_and_the_worker_runs_it(
    make_account, dovecot: Dovecot
) -> None:
    for raw in generated.mix(3):
        dovecot.deliver("alice", raw)
    account = make_account()
    job_id = connector.retrieve_email_messages(account)
    assert connector.retrieve_email_messages(account.id) == job_id  # already queued: the same job
    status = fetchjobs.status(job_id)
    assert (status.state, status.finished) == ("queued", False)

    worker = SimpleWorker([queues.queue(queues.FETCH)], connection=get_redis(), serializer=JSONSerializer)
    assert worker.work(burst=True)

    status = fetchjobs.status(job_id)
    assert status.state == "finished" and status.percent == 100
    assert status.summary == {"stored": 3, "skipped": 0, "quarantined": 0, "failed": 0, "total": 3,
                              "total_on_server": 3, "relinked": 0, "cancelled": 0}  # fmt: skip
    assert (status.done, status.total) == (3, 3)
    assert connector.retrieve_email_messages(account) != job_id  # finished: a new fetch gets a new job


def test_a_failing_job_reports_its_reason(make_account, dovecot: Dovecot) -> None:
    account = make_account(password="wrong password")
    job_id = fetchjobs.enqueue(account)
    SimpleWorker([queues.queue(queues.FETCH)], connection=get_redis(), serializer=JSONSerializer).work(burst=True)
    status = fetchjobs.status(job_id)
    assert status.state == "failed"
    assert status.error and "authentication failed" in status.error


def test_a_big_fetch_refreshes_the_planner_statistics(make_account, dovecot: Dovecot, monkeypatch) -> None:
    # With stale statistics PostgreSQL walked every row for a search that matches a few (benchmarks.md);
    # SQLite plans these queries well without any, and is left as it is.
    monkeypatch.setattr(fetching, "ANALYZE_AFTER", 3)
    dovecot.deliver_many("alice", generated.mix(4, seed=17))
    account = make_account(fetch_strategy="replicate")
    assert fetching.fetch(account).stored == 4
    if db.session.get_bind().dialect.name == "postgresql":
        query = "SELECT relname FROM pg_stat_user_tables WHERE last_analyze IS NOT NULL"
        assert {"email_message", "message_search"} <= set(db.session.scalars(text(query)))
    else:
        assert db.session.scalar(text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")) == 0
