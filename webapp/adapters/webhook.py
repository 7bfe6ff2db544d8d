"""Webhook delivery over HTTP: a JSON POST signed with HMAC-SHA256 (Stripe-style header).

Where a POST may go is checked twice: when the URL is given (``check_url``) and when it is sent
(``post``). Only ``http`` and ``https``; no redirects (a 3xx is a failed delivery); the host's
addresses are resolved once, checked, and the connection goes to the checked address (so a DNS answer
cannot change between the check and the connection), while the Host header and the TLS server name
and certificate check keep using the URL's host. Link-local and cloud-metadata addresses are always
refused; private and loopback ones only when ``allow_private`` is False.

Error messages show a URL as scheme, host and port only (``redact``): paths and query strings of
webhook URLs often carry secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import json
import re
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urljoin, urlsplit

from webapp.adapters.errors import AdapterError, PermanentError, TransientError

SIGNATURE_HEADER = "X-EmailConnector-Signature"
DELIVERY_HEADER = "X-EmailConnector-Delivery"
SCHEMES = {"http": 80, "https": 443}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Never a webhook receiver, whatever the settings: cloud metadata services and the host's own
# internal endpoints (169.254.169.254 and fe80::/10 are covered as link-local).
NEVER = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this network": 0.0.0.0 reaches the local host on Linux
        "100.100.100.200/32",  # Alibaba Cloud metadata
        "168.63.129.16/32",  # Azure WireServer
        "192.0.0.192/32",  # Oracle Cloud metadata (classic)
        "fd00:ec2::254/128",  # AWS metadata over IPv6
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")  # RFC 8215: the IPv4 address in the last 32 bits
_IPV4_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # RFC 2765 (SIIT)
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_SITE_LOCAL = ipaddress.ip_network("fec0::/10")  # deprecated (RFC 3879), still private wherever it is used
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:!?)\]]")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~?"


@dataclass(frozen=True)
class Answer:
    """The receiver's answer to a delivered POST."""

    status: int
    reason: str


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, body: bytes, header: str, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does: check the MAC and reject an old timestamp (replays)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp = fields.get("t", "")
    if not stamp.isdigit() or abs((now or time.time()) - int(stamp)) > tolerance:
        return False
    expected = sign(secret, body, int(stamp)).split(",v1=")[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


# --- showing URLs --------------------------------------------------------------------------------------


def redact(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what error messages may show of a webhook URL."""
    try:
        parts = urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(an invalid URL)"
    if not parts.scheme or not host:
        return "(an invalid URL)"
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{netloc}" + (f":{port}" if port is not None else "")


def redact_text(text: str) -> str:
    """Replace every URL inside ``text`` by its scheme and host."""
    return _URL_IN_TEXT.sub(lambda match: redact(match.group(0)), text)


# --- where a POST may go -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked webhook URL: the host as sent (ASCII), the port, and the request path."""

    scheme: str
    host: str
    port: int
    path: str
    literal: IPAddress | None  # the host, when it is an IP address


def check_url(url: str, allow_private: bool = True) -> Target:
    """Check what can be checked without the network; raise ``PermanentError`` saying why not."""
    shown = redact(url)
    if len(url) > 2000 or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise PermanentError(f"{shown}: not a usable URL (spaces, control characters or over 2000 characters)")
    try:
        parts = urlsplit(url)
        hostname, port = parts.hostname, parts.port
    except ValueError:
        raise PermanentError(f"{shown}: not a usable URL (host or port)") from None
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise PermanentError(f"{shown}: only http:// and https:// webhooks are delivered")
    if not hostname:
        raise PermanentError(f"{shown}: the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise PermanentError(f"{shown}: user:password@ in the URL is not supported; put a token in the path")
    literal = _literal_address(hostname)
    if literal is None:
        try:
            host = hostname.encode("idna").decode("ascii")
        except UnicodeError:
            raise PermanentError(f"{shown}: the host name is not valid") from None
        if not allow_private and (host == "localhost" or host.endswith(".localhost")):
            raise PermanentError(f"{shown}: loopback targets are refused (WEBHOOK_ALLOW_PRIVATE is off)")
    else:
        host = str(literal)
        refusal = address_refusal(literal, allow_private)
        if refusal:
            raise PermanentError(f"{shown}: {refusal}")
    path = quote(parts.path or "/", safe=_PATH_SAFE) + (
        f"?{quote(parts.query, safe=_PATH_SAFE)}" if parts.query else ""
    )
    return Target(scheme, host, port or SCHEMES[scheme], path, literal)


def _literal_address(hostname: str) -> IPAddress | None:
    """The address a host that is written as a number stands for (``2852039166`` and ``0xA9.0xFE.…`` too)."""
    try:
        return ipaddress.ip_address(hostname)
    except ValueError:
        pass
    if hostname.isascii() and all(c.isalnum() or c == "." for c in hostname) and hostname[:1].isdigit():
        try:  # the forms the system resolver accepts as IPv4 numbers (inet_aton)
            return ipaddress.IPv4Address(socket.inet_aton(hostname))
        except OSError:
            return None
    return None


def address_refusal(address: IPAddress, allow_private: bool) -> str | None:
    """Why a POST must not go to ``address``, or None when it may."""
    inner = _embedded_ipv4(address)
    checked = inner if inner is not None else address
    if checked.is_loopback or checked in _SITE_LOCAL:
        kind = "private"
    elif (
        any(checked in net for net in NEVER)
        or checked.is_link_local
        or checked.is_multicast
        or checked.is_unspecified
        or (checked.version == 4 and checked.is_reserved)
    ):
        kind = "never"
    else:
        kind = "public" if checked.is_global else "private"
    if kind == "never":
        return f"{address} is a link-local, cloud-metadata or reserved address, never allowed for webhooks"
    if kind == "private" and not allow_private:
        return f"{address} is a private or loopback address, refused (WEBHOOK_ALLOW_PRIVATE is off)"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one reaches (mapped, NAT64, 6to4, Teredo, IPv4-compatible), if any."""
    if address.version == 4:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if (
        address in _NAT64
        or address in _LOCAL_NAT64
        or address in _IPV4_TRANSLATED
        or (address in _IPV4_COMPATIBLE and int(address) > 1)
    ):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def connect_to(address: IPAddress, port: int) -> tuple[int, tuple[Any, ...]]:
    """The (family, sockaddr) that :class:`CheckedConnection` connects to for ``address``."""
    if address.version == 4:
        return socket.AF_INET, (str(address), port)
    return socket.AF_INET6, (str(address), port, 0, 0)


def _addresses(target: Target, allow_private: bool, shown: str) -> list[tuple[int, tuple[Any, ...]]]:
    """Resolve the host once and check every address; return (family, sockaddr) to connect to."""
    if target.literal is not None:
        return [connect_to(target.literal, target.port)]
    try:
        infos = socket.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        raise TransientError(f"{shown}: the name could not be resolved ({exc.strerror})", kind="dns") from None
    found: list[tuple[int, tuple[Any, ...]]] = []
    for family, _type, _proto, _name, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        refusal = address_refusal(address, allow_private)
        if refusal:  # one bad answer condemns the name: it points where webhooks must not go
            raise PermanentError(f"{shown} resolves to {refusal}")
        if (family, sockaddr) not in found:
            found.append((family, tuple(sockaddr)))
    if not found:
        raise TransientError(f"{shown}: the name has no IPv4 or IPv6 address", kind="dns")
    return found


class CheckedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to an address checked beforehand; Host, SNI and certificate use the name."""

    def __init__(
        self,
        target: Target,
        addresses: list[tuple[int, tuple[Any, ...]]],
        timeout: float,
        tls: ssl.SSLContext | None,
    ) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.default_port = SCHEMES[target.scheme]  # the Host header names the port only when it differs
        self._addresses = addresses
        self._tls = tls

    def connect(self) -> None:
        """Connect to the first checked address that answers (TLS with the URL's host name)."""
        error: OSError | None = None
        for family, sockaddr in self._addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(sockaddr)
                if self._tls is not None:
                    sock = self._tls.wrap_socket(sock, server_hostname=self.host)
            except OSError as exc:
                sock.close()
                error = exc
                if isinstance(exc, ssl.SSLError):
                    raise
                continue
            self.sock = sock
            return
        assert error is not None
        raise error


def post(
    url: str,
    secret: str,
    payload: dict[str, Any],
    delivery_id: str,
    timeout: float = 10,
    *,
    allow_private: bool = True,
    tls: ssl.SSLContext | None = None,
) -> Answer:
    """POST ``payload``; a 2xx answer is success, a 3xx or a 4xx (but 408/429) permanent, else transient.

    ``tls`` replaces the system CAs (tests; a receiver with a private CA).
    """
    shown = redact(url)
    target = check_url(url, allow_private)
    addresses = _addresses(target, allow_private, shown)
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "EmailConnector-Webhook/1",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        DELIVERY_HEADER: delivery_id,
    }
    context = (tls or ssl.create_default_context()) if target.scheme == "https" else None
    connection = CheckedConnection(target, addresses, timeout, context)
    response: http.client.HTTPResponse | None = None
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        status, reason, location = response.status, response.reason, response.getheader("Location")
    except (OSError, http.client.HTTPException, ValueError) as exc:  # said without the URL's path
        raise describe_failure(exc, shown, timeout) from None
    finally:
        if response is not None:
            response.close()  # the body is not read: the answer is in the status line
        connection.close()
    message = f"{shown} answered {status} {reason}".rstrip()
    if 300 <= status < 400:
        where = redact(urljoin(url, location)) if location else "nowhere (no Location)"
        raise PermanentError(f"{message}, a redirect to {where}: redirects are not followed", kind="protocol")
    if 400 <= status < 500 and status not in (408, 429):
        raise PermanentError(message, kind="protocol")
    if not 200 <= status < 300:
        raise TransientError(message, kind="protocol")
    return Answer(status, reason)


def describe_failure(exc: BaseException, shown: str, timeout: float) -> AdapterError:
    """An HTTP request's failure in plain words, naming the URL as ``shown`` (scheme, host, port)."""
    if isinstance(exc, AdapterError):
        return exc
    if isinstance(exc, ConnectionRefusedError):
        return TransientError(f"{shown} refused the connection (nothing listens there)", kind="refused")
    if isinstance(exc, TimeoutError | socket.timeout):
        return TransientError(f"{shown} did not answer within {timeout:g} seconds (timeout)", kind="timeout")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return TransientError(f"TLS: the certificate of {shown} is not trusted: {exc.verify_message}", kind="tls")
    if isinstance(exc, ssl.SSLError):
        return TransientError(f"TLS: the secure connection to {shown} failed: {exc.reason or exc}", kind="tls")
    if isinstance(
        exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError | http.client.RemoteDisconnected
    ):
        return TransientError(f"{shown} closed the connection unexpectedly", kind="reset")
    if isinstance(exc, OSError):
        return TransientError(f"{shown} could not be reached: {exc.strerror or type(exc).__name__}", kind="network")
    if isinstance(exc, http.client.HTTPException):
        return TransientError(f"{shown} answered with something that is not HTTP ({type(exc).__name__})")
    return PermanentError(f"{shown}: the request could not be sent ({type(exc).__name__})", kind="protocol")
