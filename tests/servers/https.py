"""A threaded HTTPS server on a free loopback port with the test kit's certificate, for the kit's web
servers (autoconfig files, OAuth)."""

from __future__ import annotations

import http.server
import ssl
import threading

from tests.servers.pki import Pki


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that writes no access log and gives up on a silent client."""

    timeout = 5

    def send_body(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(handler: type[http.server.BaseHTTPRequestHandler], pki: Pki, name: str) -> http.server.ThreadingHTTPServer:
    """Start serving ``handler`` over TLS in a daemon thread; ``shutdown()`` and ``server_close()`` end it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_pem, pki.key_pem)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True, name=name).start()
    return server
