"""The domain's own autoconfig file over HTTPS: one GET to an address the discovery's DNS resolved and
checked (never link-local or cloud-metadata addresses; private and loopback ones only when allowed), no
redirects, a size limit, and every read before the discovery's deadline."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from typing import Any

from webapp.adapters import webhook
from webapp.adapters.autoconfig.dnslookup import Lookup
from webapp.adapters.autoconfig.settings import clean_text
from webapp.adapters.autoconfig.thunderbird import MAX_BYTES
from webapp.adapters.errors import PermanentError, TransientError


def get_document(url: str, lookup: Lookup, *, allow_private: bool = False) -> bytes:
    """The body of a 200 answer to GET ``url`` (at most MAX_BYTES) by ``lookup.deadline``; anything else
    raises, saying why (kind ``absent`` when the host has no address)."""
    shown = webhook.redact(url)
    target = webhook.check_url(url, allow_private=True)  # the address is checked below, once resolved
    found = [target.literal] if target.literal else [ipaddress.ip_address(a) for a in lookup.addresses(target.host)]
    if not found:
        raise TransientError(f"{shown}: the name has no address", kind="absent")
    addresses: list[tuple[int, tuple[Any, ...]]] = []
    for address in found:
        if webhook.address_refusal(address, allow_private):
            raise PermanentError(
                f"{shown} resolves to {address}, a link-local, metadata, private or loopback address: not asked "
                "(AUTOCONFIG_ALLOW_PRIVATE allows private ones)",
                kind="address",
            )
        addresses.append(webhook.connect_to(address, target.port))
    left = lookup.deadline - time.monotonic()
    if left <= 0:
        raise TransientError(f"{shown}: no time left to ask", kind="timeout")
    context = ssl.create_default_context() if target.scheme == "https" else None
    connection = webhook.CheckedConnection(target, addresses, left, context)
    try:
        connection.request("GET", target.path, headers={"Accept": "application/xml, text/xml"})
        sock = connection.sock  # (the response takes it over: the connection forgets it when it will close)
        response = connection.getresponse()
        status, reason = response.status, clean_text(response.reason or "", 80)
        body = _read(response, sock, lookup.deadline, shown) if status == 200 else b""
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise webhook.describe_failure(exc, shown, max(round(left, 1), 0.1)) from None
    finally:
        connection.close()
    if status != 200:
        kind = "absent" if status in (404, 410) else "protocol"
        raise (PermanentError if 300 <= status < 500 else TransientError)(
            f"{shown} answered {status} {reason}".rstrip(), kind=kind
        )
    return body


def _read(response: http.client.HTTPResponse, sock: socket.socket | None, deadline: float, shown: str) -> bytes:
    """The body, a chunk at a time: a server that sends a byte now and then is cut off at the deadline."""
    body = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TransientError(f"{shown} did not send its file in time", kind="timeout")
        if sock is not None:
            sock.settimeout(left)  # each read waits at most until the deadline
        chunk = response.read1(16384)
        if not chunk:
            return bytes(body)
        body += chunk
        if len(body) > MAX_BYTES:
            raise PermanentError(f"{shown}: the autoconfig file is over {MAX_BYTES // 1024} KB")
