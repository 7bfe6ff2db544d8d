"""What a discovery source found: a provider's servers, in the order the source prefers them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

PROTOCOLS = ("imap", "pop3", "smtp")
SECURITIES = ("none", "starttls", "tls")


@dataclass(frozen=True)
class ServerSetting:
    """One way to reach one server: ``protocol`` imap|pop3|smtp, ``security`` none|starttls|tls, and the
    login name with the address filled in. ``auth`` is ``password``, ``oauth2`` or ``none`` (as far as
    the source says)."""

    protocol: str
    host: str
    port: int
    security: str
    username: str
    auth: str = "password"

    def as_dict(self) -> dict[str, Any]:
        """The setting as JSON-ready values."""
        return asdict(self)


@dataclass(frozen=True)
class Provider:
    """A configuration found for an address: from ``source`` (preset, autoconfig, mx, srv), where exactly
    (``origin``: the preset's domain, the URL, the MX host, the SRV names), and its servers — incoming
    (IMAP before POP3, most secure first) and outgoing."""

    source: str
    origin: str
    name: str
    incoming: tuple[ServerSetting, ...] = ()
    outgoing: tuple[ServerSetting, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """The provider as JSON-ready values (``--json``, the cache)."""
        return {
            "source": self.source,
            "origin": self.origin,
            "name": self.name,
            "incoming": [s.as_dict() for s in self.incoming],
            "outgoing": [s.as_dict() for s in self.outgoing],
            "notes": list(self.notes),
        }


def fill_username(template: str, address: str) -> str:
    """Thunderbird's placeholders: %EMAILADDRESS%, %EMAILLOCALPART%, %EMAILDOMAIN%."""
    local, _, domain = address.rpartition("@")
    return (
        template.replace("%EMAILADDRESS%", address).replace("%EMAILLOCALPART%", local).replace("%EMAILDOMAIN%", domain)
    )


def preference(setting: ServerSetting) -> tuple[int, int]:
    """Sort key: IMAP before POP3; implicit TLS, then STARTTLS, then plain."""
    security_rank = {"tls": 0, "starttls": 1, "none": 2}[setting.security]
    protocol_rank = {"imap": 0, "pop3": 1, "smtp": 0}[setting.protocol]
    return (protocol_rank, security_rank)
