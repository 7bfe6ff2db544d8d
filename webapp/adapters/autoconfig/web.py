"""The domain's own autoconfig file over HTTPS: one GET to an address the discovery's DNS resolved and
checked (never link-local or cloud-metadata addresses, as for webhooks), no redirects, a size limit."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from typing import Any

from webapp.adapters import webhook
from webapp.adapters.autoconfig.dnslookup import Lookup
from webapp.adapters.autoconfig.thunderbird import MAX_BYTES
from webapp.adapters.errors import PermanentError, TransientError


def get_document(url: str, lookup: Lookup, timeout: float, *, allow_private: bool = True) -> bytes:
    """The body of a 200 answer to GET ``url`` (at most MAX_BYTES); anything else raises, saying why."""
    shown = webhook.redact(url)
    target = webhook.check_url(url, allow_private)
    found = [target.literal] if target.literal else [ipaddress.ip_address(a) for a in lookup.addresses(target.host)]
    if not found:
        raise TransientError(f"{shown}: the name has no address", kind="dns")
    addresses: list[tuple[int, tuple[Any, ...]]] = []
    for address in found:
        refusal = webhook.address_refusal(address, allow_private)
        if refusal:
            raise PermanentError(f"{shown} resolves to {refusal}")
        if address.version == 4:
            addresses.append((socket.AF_INET, (str(address), target.port)))
        else:
            addresses.append((socket.AF_INET6, (str(address), target.port, 0, 0)))
    context = ssl.create_default_context() if target.scheme == "https" else None
    connection = webhook.CheckedConnection(target, addresses, timeout, context)
    try:
        connection.request("GET", target.path, headers={"Accept": "application/xml, text/xml"})
        response = connection.getresponse()
        body = response.read(MAX_BYTES + 1)
        status, reason = response.status, response.reason
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise webhook.describe_failure(exc, shown, timeout) from None
    finally:
        connection.close()
    if status != 200:
        raise (PermanentError if 300 <= status < 500 else TransientError)(
            f"{shown} answered {status} {reason}".rstrip(), kind="protocol"
        )
    if len(body) > MAX_BYTES:
        raise PermanentError(f"{shown}: the autoconfig file is over {MAX_BYTES // 1024} KB")
    return body
