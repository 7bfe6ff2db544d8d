"""The DNS lookups of discovery (MX, SRV, and the addresses of autoconfig hosts) through dnspython, on the
system's resolvers or on the name servers given (``host:port``), each answer within a short lifetime."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dns.exception
import dns.resolver

from webapp.adapters.errors import TransientError


@dataclass(frozen=True)
class Service:
    """An RFC 6186 SRV answer: a server for the service, lowest ``priority`` first."""

    priority: int
    weight: int
    port: int
    target: str


class Lookup:
    def __init__(self, servers: Sequence[str] | None, timeout: float) -> None:
        if servers:
            resolver = dns.resolver.Resolver(configure=False)
            hosts, ports = zip(*(_host_port(s) for s in servers), strict=True)
            resolver.nameservers = list(hosts)
            resolver.nameserver_ports = dict(zip(hosts, ports, strict=True))
        else:
            resolver = dns.resolver.Resolver()
        resolver.lifetime = resolver.timeout = timeout
        self._resolver = resolver

    def mx(self, domain: str) -> list[str]:
        """The domain's mail exchangers, most preferred first ([] when it has none)."""
        answers = self._ask(domain, "MX")
        ranked = sorted((int(r.preference), str(r.exchange).rstrip(".").lower()) for r in answers)
        return [host for _, host in ranked if host]

    def srv(self, name: str) -> list[Service]:
        """The SRV records of ``name`` (``_imaps._tcp.example.com``), best first; a target of "." (RFC 2782:
        the service is not offered there) is left out."""
        answers = self._ask(name, "SRV")
        found = [
            Service(int(r.priority), int(r.weight), int(r.port), str(r.target).rstrip(".").lower()) for r in answers
        ]
        return sorted((s for s in found if s.target), key=lambda s: (s.priority, -s.weight))

    def addresses(self, host: str) -> list[str]:
        """The host's IPv4 and IPv6 addresses."""
        return [str(r) for kind in ("A", "AAAA") for r in self._ask(host, kind)]

    def _ask(self, name: str, kind: str) -> list[Any]:
        try:
            return list(self._resolver.resolve(name, kind, search=False))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise TransientError(f"DNS: no answer for {name} ({kind}) in time", kind="timeout") from None
        except (dns.resolver.NoNameservers, dns.exception.DNSException) as exc:
            raise TransientError(f"DNS: {name} ({kind}) could not be looked up: {exc}", kind="dns") from None


def _host_port(server: str) -> tuple[str, int]:
    host, _, port = server.strip().rpartition(":")
    if not host or not port.isdigit():
        return server.strip(), 53
    return host.strip("[]"), int(port)
