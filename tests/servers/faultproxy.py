"""A fault-injecting TCP proxy: put it between a client and a real server.

Modes: ``pass`` (forward), ``reset`` (accept, then reset the connection), ``blackhole`` (accept and never
answer), ``delay`` (forward each chunk after ``delay`` seconds). ``reset_after`` resets once that many
bytes went from server to client. Changing the mode affects new connections and chunks in flight.
``hold(command)`` keeps the client line containing ``command`` (and with it the connection) until released.
``rewrite(old, new)`` changes what the server says (plain connections only).
``from_client`` records each chunk the client sent, as read (how a client batches its writes).
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from tests.servers.ports import free_port


@dataclass
class Hold:
    """A client line held back by the proxy: ``arrived`` once it came, forwarded after ``release()``."""

    command: bytes
    timeout: float
    arrived: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class FaultProxy:
    target_port: int
    target_host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    mode: str = "pass"
    delay: float = 0.0
    reset_after: int | None = None
    _listener: socket.socket | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)
    _sockets: list[socket.socket] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    connections: int = 0
    errors: list[str] = field(default_factory=list)
    answers: list[tuple[bytes, bytes]] = field(default_factory=list)
    answered: list[bytes] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    rewrites: list[tuple[bytes, bytes]] = field(default_factory=list)
    from_client: list[bytes] = field(default_factory=list)

    def start(self) -> FaultProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self._listener = listener
        threading.Thread(target=self._accept_loop, daemon=True, name=f"faultproxy:{self.port}").start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        for held in self.holds:
            held.release()
        with self._lock:
            for sock in self._sockets:
                _close(sock)
            self._sockets.clear()
        if self._listener is not None:
            self._listener.close()

    def set(self, mode: str, *, delay: float = 0.0, reset_after: int | None = None) -> None:
        self.mode, self.delay, self.reset_after = mode, delay, reset_after

    def answer(self, command: bytes, reply: bytes) -> None:
        """Answer client lines containing ``command`` with ``reply`` (``{tag}`` = the line's first word)."""
        self.answers.append((command, reply))

    def rewrite(self, old: bytes, new: bytes) -> None:
        """Replace ``old`` with ``new`` in what the server sends (a plain connection): a server that lacks a
        capability, say. Meant for short protocol lines; a match split across two reads is missed."""
        self.rewrites.append((old, new))

    def hold(self, command: bytes, timeout: float = 120) -> Hold:
        """Hold the client line containing ``command`` until released (at most ``timeout`` seconds): a
        server that answers late exactly there."""
        held = Hold(command, timeout)
        self.holds.append(held)
        return held

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            with self._lock:
                self._sockets.append(client)
            if self.mode == "reset":
                _reset(client)
                continue
            if self.mode == "blackhole":
                continue  # held open, never answered, closed at stop()
            try:
                upstream = socket.create_connection((self.target_host, self.target_port), timeout=5)
            except OSError as exc:
                self.errors.append(f"connecting upstream: {exc!r}")
                _reset(client)
                continue
            with self._lock:
                self._sockets.append(upstream)
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        # One thread per connection, both directions through select(): a reset closes sockets no other
        # thread is blocked on, so the kernel really sends the RST.
        down = 0
        pending = b""  # client bytes not yet forwarded: a line that is not complete yet
        peers = {client: upstream, upstream: client}
        try:
            while not self._stopping.is_set():
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                for source in readable:
                    sink = peers[source]
                    chunk = source.recv(65536)
                    if not chunk:
                        return
                    if self.mode == "blackhole":
                        continue  # swallow: the peer waits forever
                    if self.mode == "reset":
                        return _reset_both(client, upstream)
                    if source is client:
                        self.from_client.append(chunk)
                    if self.mode == "delay" and self.delay:
                        time.sleep(self.delay)
                    if source is client and (self.answers or self.holds):
                        chunk, pending = self._answered(pending + chunk, client)
                        if not chunk:
                            continue
                    if source is upstream:
                        for before, after in self.rewrites:
                            chunk = chunk.replace(before, after)
                    if source is upstream and self.reset_after is not None:
                        room = self.reset_after - down
                        if len(chunk) >= room:
                            client.sendall(chunk[: max(room, 0)])
                            return _reset_both(client, upstream)
                        down += len(chunk)
                    sink.sendall(chunk)
        except OSError:
            pass
        finally:
            _close(client)
            _close(upstream)

    def _answered(self, data: bytes, client: socket.socket) -> tuple[bytes, bytes]:
        """Split ``data`` into what to forward and an incomplete last line; answer matching lines."""
        forward = b""
        *lines, rest = data.split(b"\r\n")
        for line in lines:
            for held in self.holds:
                if held.command in line:
                    held.arrived.set()
                    held.released.wait(held.timeout)
            rule = next((reply for command, reply in self.answers if command in line), None)
            if rule is None:
                forward += line + b"\r\n"
                continue
            self.answered.append(line)
            tag = line.split(b" ", 1)[0]
            client.sendall(rule.replace(b"{tag}", tag))
        return forward, rest


def _reset_both(client: socket.socket, upstream: socket.socket) -> None:
    _reset(client)
    _reset(upstream)


def _reset(sock: socket.socket) -> None:
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass
