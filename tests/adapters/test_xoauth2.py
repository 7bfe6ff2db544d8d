"""SASL XOAUTH2 against the kit's own servers: Dovecot (IMAP, POP3) checks each token by introspection at
the kit's OAuth server, the SMTP server asks it too. The groundwork of the OAuth issue (#15)."""

from __future__ import annotations

import pytest

from tests.servers.dovecot import Dovecot
from tests.servers.oauthserver import OAuthServer
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from webapp.adapters.errors import AuthError, PermanentError
from webapp.adapters.mail import imap, pop3
from webapp.adapters.mail import smtp as smtp_adapter
from webapp.adapters.mail.auth import XOAuth2Auth
from webapp.adapters.mail.endpoint import Endpoint, TlsPolicy

CHECKS = {"imap": imap.check_login, "pop3": pop3.check_login, "smtp": smtp_adapter.check_login}


def _endpoint(protocol: str, security: str, dovecot: Dovecot, smtp: SmtpServer, pki: Pki) -> Endpoint:
    ports = {
        ("imap", "tls"): dovecot.imaps_port,
        ("imap", "starttls"): dovecot.imap_port,
        ("pop3", "tls"): dovecot.pop3s_port,
        ("pop3", "starttls"): dovecot.pop3_port,
        ("smtp", "tls"): smtp.tls_port,
        ("smtp", "starttls"): smtp.port,
    }
    tls = TlsPolicy(verify=True, ca_pem=pki.ca_pem.read_text())
    return Endpoint(protocol, security, "127.0.0.1", ports[(protocol, security)], folder="INBOX", timeout=5, tls=tls)


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_a_valid_token_logs_in_and_is_asked_for_at_each_login(
    dovecot: Dovecot, smtp: SmtpServer, pki: Pki, oauth_server: OAuthServer, mail_user, protocol: str, security: str
) -> None:
    dovecot.deliver("alice", b"Subject: one\r\n\r\nbody\r\n")
    asked: list[str] = []

    def token() -> str:
        asked.append(oauth_server.issue("alice"))  # a fresh token each time, as a refresh would give
        return asked[-1]

    endpoint = _endpoint(protocol, security, dovecot, smtp, pki)
    for _ in range(2):
        assert "OK" in CHECKS[protocol](endpoint, XOAuth2Auth("alice", token))
    assert len(asked) == 2 and oauth_server.introspections.count("alice") >= 2


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_a_token_that_is_not_the_users_or_not_alive_is_refused(
    dovecot: Dovecot, smtp: SmtpServer, pki: Pki, oauth_server: OAuthServer, mail_user, protocol: str
) -> None:
    dovecot.add_user("bob", "bob-mail-pw")
    endpoint = _endpoint(protocol, "tls", dovecot, smtp, pki)
    revoked = oauth_server.issue("alice")
    oauth_server.revoke(revoked)
    for user, token in (
        ("alice", oauth_server.issue("bob")),  # bob's token for alice's mailbox
        ("alice", oauth_server.issue("alice", seconds=-1)),  # expired
        ("alice", revoked),
        ("alice", "not-a-token"),
    ):
        with pytest.raises(AuthError, match="authentication failed") as info:
            CHECKS[protocol](endpoint, XOAuth2Auth(user, lambda token=token: token))
        assert token not in str(info.value)


@pytest.mark.parametrize("protocol", ["imap", "pop3", "smtp"])
def test_a_token_or_user_with_a_line_break_is_never_sent(
    dovecot: Dovecot, smtp: SmtpServer, pki: Pki, oauth_server: OAuthServer, mail_user, protocol: str
) -> None:
    endpoint = _endpoint(protocol, "tls", dovecot, smtp, pki)
    before = len(oauth_server.introspections)
    for user, token in (("alice", "tok\r\nA001 LOGOUT"), ("alice\x01auth=Bearer x", "tok"), ("alice", "t\x00k")):
        with pytest.raises((PermanentError, AuthError)):
            CHECKS[protocol](endpoint, XOAuth2Auth(user, lambda token=token: token))
    assert len(oauth_server.introspections) == before


def test_mail_goes_out_authenticated_by_token(
    dovecot: Dovecot, smtp: SmtpServer, pki: Pki, oauth_server: OAuthServer, mail_user
) -> None:
    endpoint = _endpoint("smtp", "starttls", dovecot, smtp, pki)
    auth = XOAuth2Auth("alice", lambda: oauth_server.issue("alice"))
    report = smtp_adapter.send(endpoint, auth, "alice@example.test", ["bob@example.test"], b"Subject: t\r\n\r\nx\r\n")
    assert report.accepted == ["bob@example.test"] or report.accepted == ("bob@example.test",)
    assert smtp.received[-1].authenticated_as == "alice"
