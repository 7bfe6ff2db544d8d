"""The test kit's own OAuth 2.0 server over HTTPS (its certificate from the kit's CA), speaking what
Microsoft's identity platform speaks for mail: tokens for a mailbox user, and token introspection (RFC
7662), which the kit's Dovecot asks to check a SASL XOAUTH2 login and the kit's SMTP server asks too.

It mints tokens directly (``issue``), answers introspection, serves the OpenID metadata of a tenant
(``/<tenant>/v2.0/.well-known/openid-configuration``, what msal reads) and the client-credentials grant
at ``/<tenant>/oauth2/v2.0/token`` for registered clients (``register_client``). An app-only token is
for the one mailbox its client was granted (Exchange grants a service principal mailboxes; Dovecot's
introspection asks with the token alone, so the kit's clients have one each). ``fail_with`` answers the
token endpoint with an AADSTS-style error. The authorization-code flow comes with the OAuth issue (#15).
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from tests.servers.https import QuietHandler, serve
from tests.servers.pki import Pki


@dataclass
class Token:
    username: str
    expires_at: float
    scopes: tuple[str, ...] = ("https://outlook.office365.com/.default",)


@dataclass
class Client:
    secret: str
    tenant: str
    mailbox: str


@dataclass
class OAuthServer:
    pki: Pki
    tokens: dict[str, Token] = field(default_factory=dict)
    introspections: list[str] = field(default_factory=list)  # the users whose tokens were asked about
    clients: dict[str, Client] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    fail_with: tuple[int, str, str] | None = None  # (HTTP status, error, error_description) for /token
    _server: http.server.ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def introspection_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/introspect"

    def issue(self, username: str, seconds: float = 3600) -> str:
        """A new access token for ``username``, good for ``seconds``."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = Token(username, time.time() + seconds)
        return token

    @property
    def authority(self) -> str:
        """The authority host, as an OAuth provider's *Authority* setting names it."""
        return f"https://127.0.0.1:{self.port}"

    def register_client(self, client_id: str, secret: str, tenant: str, mailbox: str) -> None:
        """An app registration with a client secret, granted ``mailbox`` for app-only access."""
        self.clients[client_id] = Client(secret, tenant, mailbox)

    def token_grant(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint: the client-credentials grant (client_secret_post or basic)."""
        self.token_requests.append({k: v for k, v in form.items() if k != "client_secret"})
        if self.fail_with is not None:
            status, error, description = self.fail_with
            codes = [int(code) for code in re.findall(r"AADSTS(\d+)", description)]
            return status, {"error": error, "error_description": description, "error_codes": codes}
        if form.get("grant_type") != "client_credentials":
            return 400, {"error": "unsupported_grant_type", "error_description": "AADSTS70003: not here yet"}
        client = self.clients.get(form.get("client_id", ""))
        if client is None or client.tenant != tenant:
            return 400, {
                "error": "unauthorized_client",
                "error_description": f"AADSTS700016: Application with identifier '{form.get('client_id')}' was "
                f"not found in the directory '{tenant}'.",
            }
        if form.get("client_secret") != client.secret:
            return 401, {
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            }
        if "https://outlook.office365.com/.default" not in form.get("scope", "").split():
            return 400, {
                "error": "invalid_scope",
                "error_description": "AADSTS70011: The provided value for scope is not valid.",
            }
        token = self.issue(client.mailbox)
        return 200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token}

    def metadata(self, tenant: str) -> dict[str, Any]:
        base = f"{self.authority}/{tenant}"
        return {
            "issuer": f"{base}/v2.0",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "response_types_supported": ["code"],
        }

    def revoke(self, token: str) -> None:
        with self._lock:
            self.tokens.pop(token, None)

    def introspect(self, token: str) -> dict[str, Any]:
        """RFC 7662: ``active`` and, for an active token, whose it is."""
        with self._lock:
            found = self.tokens.get(token)
            if found is None or found.expires_at <= time.time():
                return {"active": False}
            self.introspections.append(found.username)
            return {
                "active": True,
                "username": found.username,
                "scope": " ".join(found.scopes),
                "exp": int(found.expires_at),
            }

    def reset(self) -> None:
        with self._lock:
            self.tokens.clear()
            self.introspections.clear()
            self.clients.clear()
            self.token_requests.clear()
            self.fail_with = None

    def start(self) -> OAuthServer:
        state = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                if len(parts) == 4 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                    self._json(200, state.metadata(parts[0]))
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode("ascii", "replace"))
                values = {key: items[0] for key, items in form.items()}
                self._basic_client(values)
                path = self.path.split("?", 1)[0].strip("/").split("/")
                if path == ["introspect"]:
                    self._json(200, state.introspect(values.get("token", "")))
                elif len(path) == 4 and path[1:] == ["oauth2", "v2.0", "token"]:
                    self._json(*state.token_grant(path[0], values))
                else:
                    self._json(404, {"error": "not_found"})

            def _basic_client(self, values: dict[str, str]) -> None:
                """client_secret_basic: the client's id and secret in the Authorization header."""
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, secret = base64.b64decode(header[6:]).decode().partition(":")
                    values.setdefault("client_id", urllib.parse.unquote(user))
                    values.setdefault("client_secret", urllib.parse.unquote(secret))

            def _json(self, status: int, value: dict[str, Any]) -> None:
                self.send_body(status, "application/json", json.dumps(value).encode())

        self._server = serve(Handler, self.pki, "test-oauth")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
