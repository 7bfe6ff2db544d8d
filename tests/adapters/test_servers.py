"""The protocol adapters against the real Dovecot and SMTP server, and each failure in plain words."""

from __future__ import annotations

import contextlib
import gc
import socket
import ssl
import threading
import warnings
from collections.abc import Callable

import pytest

from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from webapp.adapters.errors import AuthError, PermanentError, TransientError
from webapp.adapters.mail import imap, pop3
from webapp.adapters.mail import smtp as smtp_adapter
from webapp.adapters.mail.auth import PasswordAuth
from webapp.adapters.mail.endpoint import Endpoint, TlsPolicy


@pytest.fixture
def creds(mail_user: tuple[str, str]) -> PasswordAuth:
    return PasswordAuth(*mail_user)


@pytest.fixture
def trust(pki: Pki) -> TlsPolicy:
    return TlsPolicy(verify=True, ca_pem=pki.ca_pem.read_text())


def _ports(dovecot: Dovecot, smtp_server: SmtpServer) -> dict[tuple[str, str], int]:
    return {
        ("imap", "none"): dovecot.imap_port,
        ("imap", "starttls"): dovecot.imap_port,
        ("imap", "tls"): dovecot.imaps_port,
        ("pop3", "none"): dovecot.pop3_port,
        ("pop3", "starttls"): dovecot.pop3_port,
        ("pop3", "tls"): dovecot.pop3s_port,
        ("smtp", "none"): smtp_server.port,
        ("smtp", "starttls"): smtp_server.port,
        ("smtp", "tls"): smtp_server.tls_port,
    }


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize("security", ["none", "starttls", "tls"])
def test_login_works_over_every_security(
    dovecot: Dovecot, smtp: SmtpServer, creds: PasswordAuth, trust: TlsPolicy, protocol: str, security: str
) -> None:
    dovecot.deliver(creds.username, b"Subject: one\r\n\r\nbody\r\n")
    port = _ports(dovecot, smtp)[(protocol, security)]
    endpoint = Endpoint(protocol, security, "127.0.0.1", port, folder="INBOX", timeout=5, tls=trust)
    check = {"imap": imap.check_login, "pop3": pop3.check_login, "smtp": smtp_adapter.check_login}[protocol]
    message = check(endpoint, creds)
    assert "OK" in message
    if protocol != "smtp":
        assert "1 message" in message


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_wrong_password_is_an_auth_error(
    dovecot: Dovecot, smtp: SmtpServer, creds: PasswordAuth, trust: TlsPolicy, protocol: str
) -> None:
    port = _ports(dovecot, smtp)[(protocol, "tls")]
    endpoint = Endpoint(protocol, "tls", "127.0.0.1", port, timeout=5, tls=trust)
    check = {"imap": imap.check_login, "pop3": pop3.check_login, "smtp": smtp_adapter.check_login}[protocol]
    with pytest.raises(AuthError, match="authentication failed") as info:
        check(endpoint, PasswordAuth(creds.username, "wrong-password-123"))
    assert "wrong-password-123" not in str(info.value)


def test_refused_port(creds: PasswordAuth, trust: TlsPolicy) -> None:
    from tests.servers.ports import refused_port

    endpoint = Endpoint("imap", "tls", "127.0.0.1", refused_port(), timeout=5, tls=trust)
    with pytest.raises(TransientError, match="refused the connection") as info:
        imap.check_login(endpoint, creds)
    assert info.value.kind == "refused"


def test_untrusted_certificate_names_the_problem(dovecot: Dovecot, creds: PasswordAuth, pki: Pki) -> None:
    other = TlsPolicy(verify=True, ca_pem=pki.other_ca_pem.read_text())
    endpoint = Endpoint("imap", "tls", "127.0.0.1", dovecot.imaps_port, timeout=5, tls=other)
    with pytest.raises(PermanentError, match="certificate .* not trusted: .*unable to get local issuer") as info:
        imap.check_login(endpoint, creds)
    assert info.value.kind == "tls"


def test_system_cas_do_not_trust_the_test_ca(smtp: SmtpServer, creds: PasswordAuth) -> None:
    endpoint = Endpoint("smtp", "starttls", "127.0.0.1", smtp.port, timeout=5, tls=TlsPolicy())
    with pytest.raises(PermanentError, match="TLS") as info:
        smtp_adapter.check_login(endpoint, creds)
    assert info.value.kind == "tls"


def test_verification_off_accepts_any_certificate(dovecot: Dovecot, creds: PasswordAuth) -> None:
    endpoint = Endpoint("pop3", "tls", "127.0.0.1", dovecot.pop3s_port, timeout=5, tls=TlsPolicy(verify=False))
    assert "OK" in pop3.check_login(endpoint, creds)


def test_timeout_when_the_server_never_answers(dovecot: Dovecot, creds: PasswordAuth, trust: TlsPolicy) -> None:
    proxy = FaultProxy(dovecot.imaps_port, mode="blackhole").start()
    try:
        endpoint = Endpoint("imap", "tls", "127.0.0.1", proxy.port, timeout=0.5, tls=trust)
        with pytest.raises(TransientError, match="did not answer within 0.5 seconds") as info:
            imap.check_login(endpoint, creds)
        assert info.value.kind == "timeout"
    finally:
        proxy.stop()


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_connection_reset_is_transient(
    dovecot: Dovecot, smtp: SmtpServer, creds: PasswordAuth, trust: TlsPolicy, protocol: str
) -> None:
    proxy = FaultProxy(_ports(dovecot, smtp)[(protocol, "tls")], mode="reset").start()
    try:
        endpoint = Endpoint(protocol, "tls", "127.0.0.1", proxy.port, timeout=5, tls=trust)
        check = {"imap": imap.check_login, "pop3": pop3.check_login, "smtp": smtp_adapter.check_login}[protocol]
        with pytest.raises(TransientError) as info:
            check(endpoint, creds)
        assert info.value.kind in ("reset", "network")
    finally:
        proxy.stop()


def test_unknown_host_is_a_dns_error(creds: PasswordAuth) -> None:
    endpoint = Endpoint("imap", "tls", "no-such-host.invalid", 993, timeout=5)
    with pytest.raises(TransientError, match="DNS: the name 'no-such-host.invalid' could not be resolved") as info:
        imap.check_login(endpoint, creds)
    assert info.value.kind == "dns"


class _HangsUpBeforeTheGreeting:
    """A server that accepts a connection (and completes the TLS handshake, with ``tls``) and then closes it
    without a greeting."""

    def __init__(self, pki: Pki, tls: bool) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.context: ssl.SSLContext | None = None
        if tls:
            self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.context.load_cert_chain(pki.cert_pem, pki.key_pem)
        self.thread = threading.Thread(target=self._serve_one, daemon=True)
        self.thread.start()

    def _serve_one(self) -> None:
        with self.listener:
            self.listener.settimeout(10)
            connection, _ = self.listener.accept()
            with connection:
                if self.context is not None:
                    connection.settimeout(10)
                    with contextlib.suppress(OSError), self.context.wrap_socket(connection, server_side=True):
                        pass
        # leaving the with blocks closed the connection: the client reads EOF where the greeting should be


def _check_and_forget(check: Callable[[Endpoint, PasswordAuth], str], endpoint: Endpoint, creds: PasswordAuth) -> str:
    with pytest.raises((TransientError, PermanentError)) as info:
        check(endpoint, creds)
    return str(info.value)


@pytest.mark.parametrize("security", ["none", "tls"])
@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_a_server_that_hangs_up_before_its_greeting_leaves_no_socket_open(
    pki: Pki, creds: PasswordAuth, trust: TlsPolicy, protocol: str, security: str
) -> None:
    """Found by CI: poplib left its socket to the garbage collector when the greeting never came (a
    descriptor held for as long as the worker lives without a collection)."""
    server = _HangsUpBeforeTheGreeting(pki, tls=security == "tls")
    endpoint = Endpoint(protocol, security, "127.0.0.1", server.port, timeout=5, tls=trust)
    check = {"imap": imap.check_login, "pop3": pop3.check_login, "smtp": smtp_adapter.check_login}[protocol]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        said = _check_and_forget(check, endpoint, creds)
        gc.collect()  # an unclosed socket says so when it is collected
    server.thread.join(10)
    assert "127.0.0.1" in said
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_missing_folder_is_named(dovecot: Dovecot, creds: PasswordAuth, trust: TlsPolicy) -> None:
    endpoint = Endpoint("imap", "tls", "127.0.0.1", dovecot.imaps_port, folder="Nope", timeout=5, tls=trust)
    with pytest.raises(PermanentError, match="folder 'Nope' cannot be opened"):
        imap.check_login(endpoint, creds)


def test_line_breaks_never_reach_the_imap_server(dovecot: Dovecot, creds: PasswordAuth, trust: TlsPolicy) -> None:
    endpoint = Endpoint(
        "imap", "tls", "127.0.0.1", dovecot.imaps_port, folder="INBOX\r\nA1 LOGOUT", timeout=5, tls=trust
    )
    with pytest.raises(PermanentError, match="line break"):
        imap.check_login(endpoint, creds)


def _sent_message() -> bytes:
    from webapp.adapters.mime import OutgoingAttachment, OutgoingMessage, build

    return build(
        OutgoingMessage(
            sender="alice@example.test",
            to=("alice@example.test",),
            bcc=("bob@example.test",),
            subject="Grüße mit Anhang",
            text="Hallo ✓",
            attachments=(OutgoingAttachment("big.bin", bytes(range(256)) * 4000),),
        )
    )


@pytest.mark.parametrize("pipelining", [True, False])
def test_send_delivers_the_exact_bytes(
    dovecot: Dovecot, smtp: SmtpServer, creds: PasswordAuth, trust: TlsPolicy, pki: Pki, pipelining: bool
) -> None:
    import ssl as ssl_module

    from imapclient import IMAPClient

    smtp.pipelining = pipelining
    raw = _sent_message()
    endpoint = Endpoint("smtp", "tls", "127.0.0.1", smtp.tls_port, timeout=5, tls=trust)
    smtp_adapter.send(endpoint, creds, "alice@example.test", ["alice@example.test", "bob@example.test"], raw)
    assert smtp.received[0].rcpt_tos == ["alice@example.test", "bob@example.test"]
    context = ssl_module.create_default_context(cafile=str(pki.ca_pem))
    with IMAPClient("127.0.0.1", port=dovecot.imaps_port, ssl=True, ssl_context=context, timeout=5) as client:
        client.login(creds.username, creds.password)
        client.select_folder("INBOX", readonly=True)
        (uid,) = client.search()
        assert client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"] == raw


@pytest.mark.parametrize(
    ("data_reply", "rcpt_reply", "error"),
    [
        ("451 4.3.0 Try again later", None, TransientError),
        ("554 5.7.1 Rejected as spam", None, PermanentError),
        (None, "450 4.2.0 Mailbox busy", TransientError),
        (None, "550 5.1.1 No such user", PermanentError),
    ],
)
@pytest.mark.parametrize("pipelining", [True, False])
def test_send_failures_are_transient_or_permanent(
    smtp: SmtpServer, creds: PasswordAuth, trust: TlsPolicy, data_reply, rcpt_reply, error, pipelining: bool
) -> None:
    smtp.pipelining = pipelining
    smtp.fail_with, smtp.fail_rcpt_with = data_reply, rcpt_reply
    endpoint = Endpoint("smtp", "starttls", "127.0.0.1", smtp.port, timeout=5, tls=trust)
    with pytest.raises(error) as info:
        smtp_adapter.send(endpoint, creds, "alice@example.test", ["alice@example.test"], _sent_message())
    assert (data_reply or rcpt_reply).split()[0] in str(info.value)
    assert smtp.received == []


@pytest.mark.parametrize("pipelining", [True, False])
def test_a_send_report_names_each_recipient_accepted_or_refused(
    smtp: SmtpServer, creds: PasswordAuth, trust: TlsPolicy, pipelining: bool
) -> None:
    smtp.pipelining = pipelining
    smtp.refuse = {"gone@example.test": "550 5.1.1 No such user", "busy@example.test": "452 4.2.2 Over quota"}
    endpoint = Endpoint("smtp", "starttls", "127.0.0.1", smtp.port, timeout=5, tls=trust)
    recipients = ["alice@example.test", "gone@example.test", "busy@example.test"]
    report = smtp_adapter.send(endpoint, creds, "alice@example.test", recipients, _sent_message())
    assert report.accepted == ("alice@example.test",)
    assert [(r.address, r.code, r.transient) for r in report.refused] == [
        ("gone@example.test", 550, False),
        ("busy@example.test", 452, True),
    ]
    assert "No such user" in report.refused[0].text
    assert [r.rcpt_tos for r in smtp.received] == [["alice@example.test"]]

    smtp.refuse = {"alice@example.test": "451 4.3.0 Later"}
    with pytest.raises(smtp_adapter.RecipientsRefusedForNow) as refused:
        smtp_adapter.send(endpoint, creds, "alice@example.test", ["alice@example.test"], _sent_message())
    assert refused.value.report.refused[0].code == 451 and refused.value.report.accepted == ()


def test_idle_takes_new_mail_announced_before_idling(dovecot: Dovecot, creds: PasswordAuth) -> None:
    """A server may send a new message's EXISTS between IDLE and its "+ idling" (found by the new-user
    review: imapclient's idle() raised on it, and the subscription counted a reconnect)."""
    proxy = FaultProxy(dovecot.imap_port).start()
    proxy.rewrite(b"+ idling", b"* 99 EXISTS\r\n+ idling")
    try:
        endpoint = Endpoint("imap", "none", "127.0.0.1", proxy.port, timeout=5)
        with imap.session(endpoint, creds) as session:
            session.examine("INBOX")
            assert session.idle(10) is True  # the announcement is the news: no waiting out the 10 s
            proxy.rewrites.clear()
            assert session.idle(0.2) is False  # and the connection idles on as before
            session.noop()
    finally:
        proxy.stop()
    assert proxy.connections == 1
