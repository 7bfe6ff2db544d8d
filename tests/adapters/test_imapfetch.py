"""Our FETCH reader against the real Dovecot, and against replies injected by the test kit's proxy."""

from __future__ import annotations

import hashlib
import imaplib
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError

from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from webapp.adapters.mail import imapfetch

BODY = "FLAGS INTERNALDATE BODY.PEEK[]"


@given(st.sets(st.integers(min_value=1, max_value=5000), max_size=300))
def test_uid_set_names_exactly_the_uids_given(uids: set[int]) -> None:
    named: set[int] = set()
    text = imapfetch.uid_set(uids)
    for part in text.split(",") if text else []:
        first, _, last = part.partition(":")
        named.update(range(int(first), int(last or first) + 1))
    assert named == uids
    assert text.count(",") < len(uids) or not uids


@pytest.fixture
def proxy(dovecot: Dovecot) -> Iterator[FaultProxy]:
    proxy = FaultProxy(dovecot.imap_port).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def client(proxy: FaultProxy, mail_user: tuple[str, str], dovecot: Dovecot) -> Iterator[IMAPClient]:
    delivered = generated.mix(5, seed=11)
    dovecot.deliver_many("alice", delivered)
    client = IMAPClient("127.0.0.1", port=proxy.port, ssl=False, timeout=5)
    client.login(*mail_user)
    client.select_folder("INBOX", readonly=True)
    yield client
    client.shutdown()


def test_the_reader_returns_what_imapclient_returns(client: IMAPClient) -> None:
    uids = client.search(["ALL"])
    ours = imapfetch.uid_fetch(client, uids, BODY)
    client.normalise_times = False  # as our reader: the server's own offset
    theirs = client.fetch(uids, [b"UID", b"FLAGS", b"INTERNALDATE", b"BODY.PEEK[]"])
    assert set(ours) == set(uids)
    for uid in uids:
        assert ours[uid][b"BODY[]"] == theirs[uid][b"BODY[]"]
        assert ours[uid][b"FLAGS"] == theirs[uid][b"FLAGS"]
        assert ours[uid][b"INTERNALDATE"] == theirs[uid][b"INTERNALDATE"]
    # The connection is still in step: the next command gets its own answer.
    assert client.search(["ALL"]) == uids


def test_unsolicited_responses_and_literals_anywhere_are_read_in_step(client: IMAPClient, proxy: FaultProxy) -> None:
    reply = (
        b"* 9 EXISTS\r\n"
        b"* 1 FETCH (FLAGS (\\Seen))\r\n"  # an unsolicited flag change without a UID: not ours
        b'* 2 FETCH (UID 2 FLAGS () BODY[] {5}\r\nHello INTERNALDATE "24-Nov-2026 10:00:00 +0000")\r\n'
        b'* 3 FETCH (UID 3 BODY[] "quoted body" FLAGS (\\Flagged))\r\n'
        b"* 4 FETCH (UID 4 BODY[] NIL)\r\n"
        b"* 5 FETCH (UID 99 BODY[] {3}\r\nabc)\r\n"  # a UID we did not ask for
        b'* LIST () "/" {4}\r\nOdd!\r\n'  # a literal in a response of another kind
        b"{tag} OK done\r\n"
    )
    proxy.answer(b"UID FETCH 2:4 ", reply)
    got = imapfetch.uid_fetch(client, [2, 3, 4], BODY)
    assert sorted(got) == [2, 3, 4]
    assert got[2][b"BODY[]"] == b"Hello" and got[2][b"FLAGS"] == ()
    assert got[2][b"INTERNALDATE"].isoformat() == "2026-11-24T10:00:00+00:00"
    assert got[3][b"BODY[]"] == b"quoted body" and got[3][b"FLAGS"] == (b"\\Flagged",)
    assert got[4][b"BODY[]"] is None
    assert client.search(["ALL"]) == [1, 2, 3, 4, 5]  # still in step with the real server


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"{tag} BAD Error in IMAP command UID FETCH\r\n", "BAD Error in IMAP command UID FETCH"),
        (b"{tag} NO Mailbox is locked\r\n", "NO Mailbox is locked"),
        (b"* BYE going down\r\n", "the server closed the connection: going down"),
    ],
)
def test_a_failed_fetch_raises_with_the_servers_words(
    client: IMAPClient, proxy: FaultProxy, reply: bytes, error: str
) -> None:
    proxy.answer(b"UID FETCH", reply)
    with pytest.raises((IMAPClientError, imaplib.IMAP4.abort), match=error.replace("[", r"\[")):
        imapfetch.uid_fetch(client, [1, 2], BODY)


def test_a_connection_cut_in_the_middle_of_a_message_is_an_error_not_a_shorter_result(
    dovecot: Dovecot, proxy: FaultProxy, mail_user: tuple[str, str]
) -> None:
    big = generated.make(0, "attachment").replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"x" * 200 + b"\r\n\r\n", 1)
    dovecot.deliver("alice", big + b"\r\n" + b"y" * 200_000 + b"\r\n")
    client = IMAPClient("127.0.0.1", port=proxy.port, ssl=False, timeout=5)
    try:
        client.login(*mail_user)
        client.select_folder("INBOX", readonly=True)
        proxy.set("pass", reset_after=100_000)  # counts from here: the greeting and login went before
        with pytest.raises((OSError, imaplib.IMAP4.abort)):
            imapfetch.uid_fetch(client, [1], BODY)
    finally:
        client.shutdown()


def test_the_bytes_are_the_servers_exactly(client: IMAPClient, dovecot: Dovecot) -> None:
    uids = client.search(["ALL"])
    got = imapfetch.uid_fetch(client, uids, BODY)
    on_disk = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in dovecot.maildir("alice").glob("*/*"))
    assert sorted(hashlib.sha256(d[b"BODY[]"]).hexdigest() for d in got.values()) == on_disk


def test_the_fast_reader_is_used_only_where_it_was_written_for() -> None:
    """The reader reaches into imapclient's and imaplib's internals: with the pinned imapclient and this
    Python it is used; when either changes, this test fails until the reader is checked again (and until
    then ImapSession falls back to imapclient's own FETCH)."""
    import sys

    import imapclient

    assert imapclient.__version__ in imapfetch.WRITTEN_FOR_IMAPCLIENT
    assert sys.version_info[:2] in imapfetch.WRITTEN_FOR_PYTHON
    assert imapfetch._internals_present()
    assert imapfetch.USABLE
