"""The DNS lookups of discovery (MX, SRV, and the addresses of autoconfig hosts) through dnspython, on the
system's resolvers or on the name servers given (``host:port``), every answer before one deadline."""

from __future__ import annotations

import ipaddress
import time
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
    """Lookups that all end by ``deadline`` (``time.monotonic()``): a late one is a timeout."""

    def __init__(self, servers: Sequence[tuple[str, int]], deadline: float) -> None:
        """``servers``: (address, port) pairs (:func:`name_server`); none: the system's resolvers."""
        if servers:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = [host for host, _ in servers]
            resolver.nameserver_ports = dict(servers)
        else:
            resolver = dns.resolver.Resolver()
        self._resolver = resolver
        self.deadline = deadline

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
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TransientError(f"DNS: no time left to look up {name} ({kind})", kind="timeout")
        try:
            return list(self._resolver.resolve(name, kind, search=False, lifetime=left))
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except dns.exception.Timeout:
            raise TransientError(f"DNS: no answer for {name} ({kind}) in time", kind="timeout") from None
        except dns.exception.DNSException as exc:  # SERVFAIL, REFUSED, a broken answer: a problem, not "absent"
            raise TransientError(
                f"DNS: {name} ({kind}) could not be looked up ({type(exc).__name__})", kind="dns"
            ) from None


def name_server(text: str) -> tuple[str, int]:
    """``192.0.2.53``, ``192.0.2.53:5353``, ``2001:db8::53`` or ``[2001:db8::53]:5353`` as (address, port);
    ValueError for anything else."""
    text = text.strip()
    try:
        return str(ipaddress.ip_address(text)), 53
    except ValueError:
        pass
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{text!r} is not a name server (an IP address, optionally with :port)")
    return str(ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))), int(port)
