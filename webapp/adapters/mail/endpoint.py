"""Where a mail server is and how to reach it, and the ``imaps://host:port/INBOX`` form of it."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

from webapp.adapters.mime.linebreaks import has_line_break

DEFAULT_PORTS = {
    ("imap", "none"): 143,
    ("imap", "starttls"): 143,
    ("imap", "tls"): 993,
    ("pop3", "none"): 110,
    ("pop3", "starttls"): 110,
    ("pop3", "tls"): 995,
    ("smtp", "none"): 25,
    ("smtp", "starttls"): 587,
    ("smtp", "tls"): 465,
}
SCHEMES = {
    f"{proto}{suffix}": (proto, security)
    for proto in ("imap", "pop3", "smtp")
    for suffix, security in (("", "none"), ("+starttls", "starttls"), ("s", "tls"))
}


@dataclass(frozen=True)
class TlsPolicy:
    """How to check the server's certificate: system CAs, a given CA (PEM), or not at all."""

    verify: bool = True
    ca_pem: str | None = None


@dataclass(frozen=True)
class Endpoint:
    protocol: str  # imap | pop3 | smtp
    security: str  # none | starttls | tls
    host: str
    port: int
    folder: str = ""
    timeout: float = 30.0
    tls: TlsPolicy = TlsPolicy()

    def describe(self) -> str:
        """The server as error messages name it, e.g. ``IMAP server mail.example.org:993``."""
        return f"{self.protocol.upper()} server {self.host}:{self.port}"


class EndpointError(ValueError):
    """A server URL that cannot be used; the message says why."""


def parse_url(url: str, allowed: tuple[str, ...]) -> tuple[str, str, str, int, str]:
    """Parse ``scheme://host[:port][/folder]`` into (protocol, security, host, port, folder).

    The folder is percent-decoded; the port defaults by scheme.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise EndpointError(f"invalid server URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES or SCHEMES[scheme][0] not in allowed:
        names = ", ".join(s for s, (p, _) in SCHEMES.items() if p in allowed)
        raise EndpointError(f"unsupported scheme {scheme!r} in {url!r}; use one of: {names}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise EndpointError(f"{url!r}: only scheme, host, port and folder may be given")
    host = parts.hostname or ""
    if not host:
        raise EndpointError(f"{url!r} has no host")
    protocol, security = SCHEMES[scheme]
    folder = unquote(parts.path[1:]) if parts.path.startswith("/") else ""
    if protocol != "imap" and folder:
        raise EndpointError(f"{url!r}: only IMAP URLs name a folder")
    if has_line_break(folder):
        raise EndpointError("a folder name cannot contain line breaks or NUL")
    return protocol, security, host, port or DEFAULT_PORTS[(protocol, security)], folder


def format_url(protocol: str, security: str, host: str, port: int, folder: str = "") -> str:
    """The inverse of :func:`parse_url`."""
    scheme = next(s for s, ps in SCHEMES.items() if ps == (protocol, security))
    netloc = f"[{host}]" if ":" in host else host
    path = "/" + quote(folder, safe="") if folder else ""
    return f"{scheme}://{netloc}:{port}{path}"
