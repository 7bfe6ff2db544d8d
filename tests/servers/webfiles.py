"""An HTTPS server for discovery tests: files by (Host, path), served with the test kit's certificate
(valid for the test domains); anything else is a 404. Requests are recorded."""

from __future__ import annotations

import http.server
from dataclasses import dataclass, field

from tests.servers.https import QuietHandler, serve
from tests.servers.pki import Pki


@dataclass
class WebFiles:
    pki: Pki
    files: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def put(self, host: str, path: str, body: bytes, status: int = 200) -> None:
        """Serve ``body`` for GET ``path`` (without the query) on the virtual host ``host``."""
        self.files[(host, path)] = (status, body)

    def reset(self) -> None:
        self.files.clear()
        self.requests.clear()

    def start(self) -> WebFiles:
        state = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
                path = self.path.split("?", 1)[0]
                state.requests.append((host, self.path))
                status, body = state.files.get((host, path), (404, b"not here"))
                self.send_body(status, "application/xml", body)

        self._server = serve(Handler, self.pki, "test-webfiles")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
