"""SMTP PIPELINING (RFC 2920): one write for MAIL, RCPT and DATA where the server offers it, and every
way out of a pipelined transaction leaves nothing delivered that should not be and the session usable
(or closed, when only closing ends DATA)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from tests.servers.faultproxy import FaultProxy
from tests.servers.smtp import SmtpServer
from webapp.adapters.errors import PermanentError
from webapp.adapters.mail import smtp as smtp_adapter
from webapp.adapters.mail.auth import PasswordAuth
from webapp.adapters.mail.endpoint import Endpoint

RAW = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: Hi\r\n\r\n.leading dot\r\nbody\r\n"


@pytest.fixture
def creds(mail_user: tuple[str, str]) -> PasswordAuth:
    return PasswordAuth(*mail_user)


@pytest.fixture
def proxy(smtp: SmtpServer) -> Iterator[FaultProxy]:
    # Plain SMTP (AUTH is allowed on loopback): the proxy sees the commands as the client wrote them.
    proxy = FaultProxy(smtp.port).start()
    yield proxy
    proxy.stop()


def _endpoint(proxy: FaultProxy) -> Endpoint:
    return Endpoint("smtp", "none", "127.0.0.1", proxy.port, timeout=5)


def _chunk_with(proxy: FaultProxy, command: bytes) -> bytes:
    """The first chunk holding ``command`` (case-insensitive: smtplib writes "mail FROM:"), lower-cased."""
    return next(chunk.lower() for chunk in proxy.from_client if command.lower() in chunk.lower())


@pytest.mark.parametrize("pipelining", [True, False])
def test_commands_go_in_one_write_only_where_the_server_offers_pipelining(
    smtp: SmtpServer, proxy: FaultProxy, creds: PasswordAuth, pipelining: bool
) -> None:
    smtp.pipelining = pipelining
    recipients = ["alice@example.test", "bob@example.test"]
    with smtp_adapter.session(_endpoint(proxy), creds) as session:
        report = session.send("alice@example.test", recipients, RAW)
        session.send("alice@example.test", ["carol@example.test"], RAW)
    assert report.accepted == tuple(recipients)
    mail = _chunk_with(proxy, b"MAIL FROM")
    together = b"rcpt to:<alice@example.test>" in mail and b"rcpt to:<bob@example.test>" in mail
    assert together == pipelining and (b"\r\ndata\r\n" in mail) == pipelining
    # Either way the content is dot-stuffed and goes only after DATA was answered.
    assert b"\r\n..leading dot\r\n" in _chunk_with(proxy, b"leading dot")
    assert [r.rcpt_tos for r in smtp.received] == [recipients, ["carol@example.test"]]
    assert smtp.received[0].data == RAW


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_refused_sender_sends_nothing_and_the_session_goes_on(
    smtp: SmtpServer, proxy: FaultProxy, creds: PasswordAuth, pipelining: bool
) -> None:
    smtp.pipelining = pipelining
    with smtp_adapter.session(_endpoint(proxy), creds) as session:
        # The proxy answers MAIL itself: the server sees the RCPTs and DATA without a MAIL (503 each).
        proxy.answer(b"FROM:<alice", b"550 5.7.1 Sender refused\r\n")
        with pytest.raises(PermanentError, match="550"):
            session.send("alice@example.test", ["bob@example.test"], RAW)
        assert session.open
        proxy.answers.clear()
        session.send("alice@example.test", ["bob@example.test"], RAW)
    assert [r.rcpt_tos for r in smtp.received] == [["bob@example.test"]]


def test_before_data_failing_after_a_pipelined_data_closes_without_delivering(
    smtp: SmtpServer, proxy: FaultProxy, creds: PasswordAuth
) -> None:
    class Stop(Exception):
        pass

    def refuse() -> None:
        raise Stop

    with smtp_adapter.session(_endpoint(proxy), creds) as session:
        with pytest.raises(Stop):
            session.send("alice@example.test", ["bob@example.test"], RAW, before_data=refuse)
        # DATA was answered 354: sending the content or a dot would deliver, so the connection is closed.
        assert not session.open
    assert smtp.received == []


def test_before_data_failing_without_pipelining_resets_and_goes_on(
    smtp: SmtpServer, proxy: FaultProxy, creds: PasswordAuth
) -> None:
    smtp.pipelining = False

    def refuse() -> None:
        raise RuntimeError("stop")

    with smtp_adapter.session(_endpoint(proxy), creds) as session:
        with pytest.raises(RuntimeError):
            session.send("alice@example.test", ["bob@example.test"], RAW, before_data=refuse)
        assert session.open
        session.send("alice@example.test", ["bob@example.test"], RAW)
    assert len(smtp.received) == 1


def _scripted_server(replies: dict[bytes, bytes]) -> tuple[int, list[bytes], threading.Thread]:
    """A one-connection SMTP server that answers each command from ``replies`` by its first word: what a
    non-conforming server does, which neither aiosmtpd nor the proxy can play in a pipelined stream."""
    listener = socket.create_server(("127.0.0.1", 0))
    heard: list[bytes] = []

    def serve() -> None:
        with listener, listener.accept()[0] as conn, conn.makefile("rb") as lines:
            conn.settimeout(5)
            conn.sendall(b"220 scripted\r\n")
            for _ in range(20):  # bounded: a handful of commands per test
                line = lines.readline()
                if not line:
                    return
                heard.append(line)
                conn.sendall(replies.get(line.split()[0].upper(), b"250 OK\r\n"))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], heard, thread


def test_a_server_that_answers_354_with_no_recipient_is_left_by_closing() -> None:
    port, heard, thread = _scripted_server(
        {
            b"EHLO": b"250-scripted\r\n250 PIPELINING\r\n",
            b"RCPT": b"550 5.1.1 No such user\r\n",
            b"DATA": b"354 go ahead\r\n",
        }
    )
    endpoint = Endpoint("smtp", "none", "127.0.0.1", port, timeout=5)
    with smtp_adapter.session(endpoint, None) as session:
        with pytest.raises(smtp_adapter.RecipientsRefusedForGood):
            session.send("alice@example.test", ["gone@example.test"], RAW)
        # Content or a lone dot after that 354 could deliver: the connection is closed instead.
        assert not session.open
    thread.join(timeout=5)
    assert heard[-1].upper() == b"DATA\r\n"
