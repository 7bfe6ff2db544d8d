"""The test kit itself: SMTP delivers into Dovecot, seeding, the fault proxy, the network guard."""

from __future__ import annotations

import email
import smtplib
import socket
import ssl
from email.policy import default

import pytest
from imapclient import IMAPClient

from tests.servers import messages
from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from tests.servers.netguard import OutsideNetwork
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer


def _imap(dovecot: Dovecot, pki: Pki, user: tuple[str, str]) -> IMAPClient:
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    client = IMAPClient("127.0.0.1", port=dovecot.imaps_port, ssl=True, ssl_context=context, timeout=5)
    client.login(*user)
    return client


def test_smtp_delivers_into_dovecot_byte_for_byte(dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user) -> None:
    raw = messages.make(1, "non_ascii", to="alice@example.test")
    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    with smtplib.SMTP_SSL("127.0.0.1", smtp.tls_port, context=context, timeout=5) as client:
        client.login(*mail_user)
        client.sendmail("bob@example.test", ["alice@example.test"], raw)
    assert smtp.received[0].authenticated_as == "alice"
    with _imap(dovecot, pki, mail_user) as client:
        client.select_folder("INBOX", readonly=True)
        (uid,) = client.search()
        body = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    assert body == raw


def test_smtp_auth_checks_the_password_and_can_answer_errors(smtp: SmtpServer, mail_user) -> None:
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client, pytest.raises(smtplib.SMTPAuthenticationError):
        client.login("alice", "nope")
    smtp.fail_with = "451 4.3.0 Try again later"
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client:
        client.login(*mail_user)
        with pytest.raises(smtplib.SMTPDataError) as info:
            client.sendmail("a@example.test", ["alice@example.test"], b"Subject: x\r\n\r\ny\r\n")
    assert info.value.smtp_code == 451
    smtp.fail_rcpt_with = "550 5.1.1 No such user"
    with smtplib.SMTP("127.0.0.1", smtp.port, timeout=5) as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("a@example.test", ["nobody@example.test"], b"Subject: x\r\n\r\ny\r\n")


def test_seeded_messages_cover_every_kind(dovecot: Dovecot, pki: Pki, mail_user) -> None:
    seeded = messages.mix(12)
    for raw in seeded:
        dovecot.deliver("alice", raw)
    with _imap(dovecot, pki, mail_user) as client:
        client.select_folder("INBOX", readonly=True)
        uids = client.search()
        fetched = client.fetch(uids, ["BODY.PEEK[]"])
    bodies = [fetched[uid][b"BODY[]"] for uid in sorted(uids)]
    assert sorted(bodies) == sorted(seeded)
    parsed = [email.message_from_bytes(raw, policy=default) for raw in seeded]
    assert any(m.get_content_type() == "multipart/alternative" for m in parsed)
    assert any(part.get_filename() for m in parsed for part in m.iter_attachments())
    assert any("Köln" in str(m["Subject"]) for m in parsed)
    assert any(part.defects for m in parsed for part in m.walk()), "some messages must be malformed"
    unknown_charset = [m for m in parsed if m.get_content_charset() == "x-no-such-charset"]
    with pytest.raises(LookupError):
        unknown_charset[0].get_content()


def test_fault_proxy_passes_resets_and_black_holes(dovecot: Dovecot) -> None:
    proxy = FaultProxy(dovecot.imap_port).start()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            assert sock.recv(100).startswith(b"* OK")
        proxy.set("reset")
        # The reset may arrive while connecting or at the first read.
        with pytest.raises((ConnectionResetError, ConnectionAbortedError)):  # noqa: SIM117
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
                if not sock.recv(100):
                    raise ConnectionResetError("closed without data")
        proxy.set("blackhole")
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.3) as sock, pytest.raises(TimeoutError):
            sock.recv(100)
        proxy.set("pass", reset_after=10)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
            received = b""
            with pytest.raises(ConnectionResetError):
                for _ in range(10):
                    chunk = sock.recv(100)
                    if not chunk:
                        raise ConnectionResetError
                    received += chunk
            assert len(received) <= 10
    finally:
        proxy.stop()


def test_network_guard_refuses_anything_but_loopback() -> None:
    with pytest.raises(OutsideNetwork):
        socket.create_connection(("192.0.2.1", 80), timeout=1)
    with pytest.raises(OutsideNetwork):
        socket.getaddrinfo("example.com", 443)


def test_idle_sees_a_delivered_message(dovecot: Dovecot, pki: Pki, mail_user) -> None:
    with _imap(dovecot, pki, mail_user) as client:
        client.select_folder("INBOX")
        client.idle()
        dovecot.deliver("alice", messages.make(1, "text"))
        responses = client.idle_check(timeout=10)
        client.idle_done()
    assert (1, b"EXISTS") in responses


def test_fault_proxy_delays(dovecot: Dovecot) -> None:
    proxy = FaultProxy(dovecot.imap_port).start()
    proxy.set("delay", delay=1.0)
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=0.3) as sock, pytest.raises(TimeoutError):
            sock.recv(100)  # the greeting is held back longer than the client waits
    finally:
        proxy.stop()
