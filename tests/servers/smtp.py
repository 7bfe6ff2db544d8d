"""An aiosmtpd SMTP server that delivers into the test Dovecot's Maildirs.

Two listeners: plain with STARTTLS offered (AUTH allowed on loopback without TLS) and implicit TLS.
AUTH PLAIN/LOGIN checks the Dovecot users. ``fail_with`` makes it answer a 4xx/5xx reply instead.
``smtputf8`` (on by default, as aiosmtpd's Controller has it) says whether new connections offer
SMTPUTF8; without it, aiosmtpd answers non-ASCII addresses with "500 Error: strict ASCII mode".
``pipelining`` (on by default, as real MTAs have it) says whether EHLO offers PIPELINING (RFC 2920);
aiosmtpd reads commands one after the other from its buffer, which is all a pipelining server needs.
"""

from __future__ import annotations

import base64
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.dovecot import Dovecot
from tests.servers.oauthserver import OAuthServer
from tests.servers.pki import Pki
from tests.servers.ports import free_port


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated_as: str | None
    mail_options: list[str] = field(default_factory=list)


class DeliveringHandler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_EHLO(
        self, smtp: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when no hook takes EHLO
        if self.server.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """SASL XOAUTH2 (aiosmtpd finds ``auth_<MECHANISM>`` on the handler): the token must be active at the
        kit's OAuth server and belong to the user named."""
        oauth = self.server.oauth
        if oauth is None or len(args) < 2:
            return AuthResult(success=False, handled=False)
        try:
            text = base64.b64decode(args[1], validate=True).decode("utf-8")
        except ValueError:
            return AuthResult(success=False, handled=False)
        fields = dict(part.split("=", 1) for part in text.split("\x01") if "=" in part)
        user, token = fields.get("user", ""), fields.get("auth", "").removeprefix("Bearer ")
        found = oauth.introspect(token)
        if found.get("active") and found.get("username") == user:
            return AuthResult(success=True, handled=False, auth_data=LoginPassword(user.encode(), b""))
        return AuthResult(success=False, handled=False)

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.server.fail_rcpt_with:
            return self.server.fail_rcpt_with
        if address in self.server.refuse:
            return self.server.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        with self.server.lock:
            self.server.transactions += 1
        if self.server.fail_with:
            return self.server.fail_with
        data = envelope.original_content or b""
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        with self.server.lock:
            self.server.received.append(
                Received(envelope.mail_from or "", list(envelope.rcpt_tos), data, login, list(envelope.mail_options))
            )
        for rcpt in envelope.rcpt_tos:
            local = rcpt.split("@", 1)[0]
            if local in self.server.dovecot.users:
                self.server.dovecot.deliver(local, data)
        return "250 Message accepted for delivery"


class SwitchableController(Controller):
    """A Controller whose connections offer SMTPUTF8 as the server's switch says at connect time."""

    def __init__(self, server: SmtpServer, handler: Any, **kwargs: Any) -> None:
        self.switches = server
        super().__init__(handler, **kwargs)

    def factory(self) -> SMTP:
        return SMTP(self.handler, **{**self.SMTP_kwargs, "enable_SMTPUTF8": self.switches.smtputf8})


@dataclass
class SmtpServer:
    dovecot: Dovecot
    pki: Pki
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    fail_with: str | None = None
    fail_rcpt_with: str | None = None
    refuse: dict[str, str] = field(default_factory=dict)  # recipient → the reply refusing it
    smtputf8: bool = True
    pipelining: bool = True
    received: list[Received] = field(default_factory=list)
    transactions: int = 0  # DATA commands completed, accepted or not
    lock: threading.Lock = field(default_factory=threading.Lock)
    _controllers: list[Controller] = field(default_factory=list)
    oauth: OAuthServer | None = None  # checks XOAUTH2 tokens (tests/servers/oauthserver.py)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user = auth_data.login.decode("utf-8", "replace")
        ok = self.dovecot.users.get(user) == auth_data.password.decode("utf-8", "replace")
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def start(self) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(self.pki.cert_pem), str(self.pki.key_pem))
        handler = DeliveringHandler(self)
        common = {
            "hostname": "127.0.0.1",
            "authenticator": self._authenticate,
            "auth_require_tls": False,
        }
        plain = SwitchableController(
            self, handler, port=self.port, tls_context=context, require_starttls=False, **common
        )
        implicit = SwitchableController(self, handler, port=self.tls_port, ssl_context=context, **common)
        for controller in (plain, implicit):
            controller.start()
            self._controllers.append(controller)

    def stop(self) -> None:
        for controller in self._controllers:
            controller.stop()
        self._controllers.clear()

    def reset(self) -> None:
        self.fail_with = None
        self.fail_rcpt_with = None
        self.refuse = {}
        self.smtputf8 = True
        self.pipelining = True
        with self.lock:
            self.received.clear()
            self.transactions = 0
