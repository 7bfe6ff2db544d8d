"""The test kit's own OAuth 2.0 server over HTTPS (its certificate from the kit's CA), speaking what
Microsoft's identity platform speaks for mail: tokens for a mailbox user, and token introspection (RFC
7662), which the kit's Dovecot asks to check a SASL XOAUTH2 login and the kit's SMTP server asks too.

This first part mints tokens directly (``issue``) and answers introspection; the authorization-code and
client-credentials flows of the OAuth issue (#15) build on it. Requests are recorded.
"""

from __future__ import annotations

import http.server
import json
import secrets
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from tests.servers.pki import Pki


@dataclass
class Token:
    username: str
    expires_at: float
    scopes: tuple[str, ...] = ("https://outlook.office365.com/.default",)


@dataclass
class OAuthServer:
    pki: Pki
    tokens: dict[str, Token] = field(default_factory=dict)
    introspections: list[str] = field(default_factory=list)  # the users whose tokens were asked about
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

    def start(self) -> OAuthServer:
        state = self

        class Handler(http.server.BaseHTTPRequestHandler):
            timeout = 5

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = urllib.parse.parse_qs(self.rfile.read(length).decode("ascii", "replace"))
                if self.path.split("?", 1)[0] == "/introspect":
                    self._json(200, state.introspect((form.get("token") or [""])[0]))
                else:
                    self._json(404, {"error": "not_found"})

            def _json(self, status: int, value: dict[str, Any]) -> None:
                body = json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.pki.cert_pem, self.pki.key_pem)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True, name="test-oauth").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
