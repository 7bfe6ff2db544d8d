"""A small authoritative DNS server on 127.0.0.1 (UDP, dnspython's message codec) for discovery tests:
records are added per test; a name may be made silent (no answer at all: a resolver times out)."""

from __future__ import annotations

import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


@dataclass
class DnsServer:
    records: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    silent: set[str] = field(default_factory=set)
    failing: set[str] = field(default_factory=set)  # answered SERVFAIL
    asked: Counter[tuple[str, str]] = field(default_factory=Counter)
    _socket: socket.socket | None = None
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def address(self) -> str:
        """``host:port``, as AUTOCONFIG_DNS_SERVERS takes it."""
        assert self._socket is not None
        return f"127.0.0.1:{self._socket.getsockname()[1]}"

    def add(self, name: str, kind: str, *values: str) -> None:
        self.records.setdefault((_key(name), kind.upper()), []).extend(values)

    def reset(self) -> None:
        self.records.clear()
        self.silent.clear()
        self.failing.clear()
        self.asked.clear()

    def start(self) -> DnsServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(0.2)
        self._socket = sock
        threading.Thread(target=self._serve, daemon=True, name="test-dns").start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._socket is not None:
            self._socket.close()

    def _serve(self) -> None:
        assert self._socket is not None
        while not self._stopping.is_set():
            try:
                wire, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(wire)
            except dns.exception.DNSException:
                continue
            answer = self._answer(query)
            if answer is not None:
                self._socket.sendto(answer.to_wire(), peer)

    def _answer(self, query: dns.message.Message) -> dns.message.Message | None:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        for question in query.question:
            name, kind = _key(question.name.to_text()), dns.rdatatype.to_text(question.rdtype)
            self.asked[(name, kind)] += 1
            if name in self.silent:
                return None
            if name in self.failing:
                response.set_rcode(dns.rcode.SERVFAIL)
                return response
            values = self.records.get((name, kind))
            if values:
                response.answer.append(dns.rrset.from_text(question.name, 60, "IN", kind, *values))
            elif not any(known == name for known, _ in self.records):
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response


def _key(name: str) -> str:
    return name.lower().rstrip(".")
