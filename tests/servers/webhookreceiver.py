"""An HTTP(S) server on loopback (a thread) that counts connections, records requests and answers as told.

Used as a webhook receiver, and as the "other" server a redirect points to: its ``connections`` count
proves whether anything ever reached it (a TCP connection is counted before any byte is read, so even an
FTP client, which waits for a greeting, is seen).
"""

from __future__ import annotations

import http.server
import socket
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any

from tests.servers.ports import free_port


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class _State:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    state: _State
    tls: ssl.SSLContext | None

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        with self.state.lock:
            self.state.connections += 1
        if self.tls is not None:
            sock.settimeout(5)
            try:
                sock = self.tls.wrap_socket(sock, server_side=True)
            except OSError:
                sock.close()
                raise
        return sock, address


class _Handler(http.server.BaseHTTPRequestHandler):
    timeout = 5  # an FTP client waiting for a greeting gives up; the handler does not hang
    server: _Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        state = self.server.state
        with state.lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append(Request(self.command, self.path, headers, body))
        self.send_response(state.status)
        for name, value in state.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_POST = do_GET = do_PUT = do_HEAD = _answer

    def log_message(self, *args: Any) -> None:
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except OSError:
            pass  # a client that hung up (or never spoke HTTP)


class Receiver:
    """``Receiver()`` listens at once on 127.0.0.1 (or ``host``); ``close()`` stops it."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, tls: ssl.SSLContext | None = None) -> None:
        self.state = _State()
        if tls is not None:
            tls.sni_callback = self._sni
        self._server = _Server((host, port or free_port()), _Handler)
        self._server.state, self._server.tls = self.state, tls
        self.host, self.port = host, int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def _sni(self, sslsocket: ssl.SSLSocket, name: str | None, context: ssl.SSLContext) -> None:
        with self.state.lock:
            self.state.server_names.append(name)

    def url(self, path: str = "/hook", scheme: str = "http", host: str | None = None) -> str:
        return f"{scheme}://{host or self.host}:{self.port}{path}"

    def answer(self, status: int, **headers: str) -> None:
        self.state.status, self.state.headers = status, headers

    @property
    def connections(self) -> int:
        return self.state.connections

    @property
    def requests(self) -> list[Request]:
        return self.state.requests

    @property
    def server_names(self) -> list[str | None]:
        return self.state.server_names

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
