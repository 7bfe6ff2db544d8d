"""What a discovery source found: a provider's servers, in the order the source prefers them."""

from __future__ import annotations

import re
import unicodedata
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Provider:
        """The provider :meth:`as_dict` gave (the cache)."""
        return cls(
            data["source"],
            data["origin"],
            data["name"],
            tuple(ServerSetting(**s) for s in data["incoming"]),
            tuple(ServerSetting(**s) for s in data["outgoing"]),
            tuple(data["notes"]),
        )


_PLACEHOLDER = re.compile(r"%(EMAILADDRESS|EMAILLOCALPART|EMAILDOMAIN)%")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
MAX_SERVERS = 10  # per direction: real providers list two or three


def fill_username(template: str, address: str) -> str:
    """Thunderbird's placeholders (%EMAILADDRESS%, %EMAILLOCALPART%, %EMAILDOMAIN%), filled in one pass (an
    address that itself contains a placeholder is not expanded again)."""
    local, _, domain = address.rpartition("@")
    values = {"EMAILADDRESS": address, "EMAILLOCALPART": local, "EMAILDOMAIN": domain}
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


def usable_host(host: str) -> bool:
    """A DNS host name as a discovered setting may name one: ASCII letters, digits and hyphens between dots,
    at least two labels, a last label that is not a number (so no IP addresses, ports, paths or spaces)."""
    labels = host.rstrip(".").split(".")
    return (
        len(host) <= 253
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and not labels[-1].isdigit()
    )


def usable_port(text: str | int) -> int | None:
    """The port, when it is one (1 to 65535, written in ASCII digits)."""
    value = str(text).strip()
    if not re.fullmatch(r"[0-9]{1,5}", value) or not 0 < int(value) < 65536:
        return None
    return int(value)


def clean_text(value: str, longest: int) -> str:
    """A name from the network, fit to show: whitespace collapsed, control and format characters (line
    breaks, bidirectional overrides) removed, at most ``longest`` characters."""
    kept = "".join(
        " " if c.isspace() else c for c in value if unicodedata.category(c) not in ("Cc", "Cf") or c.isspace()
    )
    return " ".join(kept.split())[:longest]


def usable_username(value: str) -> bool:
    """A login name without control or format characters, at most 320 characters."""
    return 0 < len(value) <= 320 and not any(unicodedata.category(c) in ("Cc", "Cf") for c in value)


def preference(setting: ServerSetting) -> tuple[int, int]:
    """Sort key: IMAP before POP3; implicit TLS, then STARTTLS, then plain."""
    security_rank = {"tls": 0, "starttls": 1, "none": 2}[setting.security]
    protocol_rank = {"imap": 0, "pop3": 1, "smtp": 0}[setting.protocol]
    return (protocol_rank, security_rank)
