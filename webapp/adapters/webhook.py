"""Webhook delivery over HTTP: a JSON POST signed with HMAC-SHA256 (Stripe-style header)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any

from webapp.adapters.errors import PermanentError, TransientError

SIGNATURE_HEADER = "X-EmailConnector-Signature"
DELIVERY_HEADER = "X-EmailConnector-Delivery"


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


def post(url: str, secret: str, payload: dict[str, Any], delivery_id: str, timeout: float = 10) -> None:
    """POST ``payload``; a 2xx answer is success, 4xx (but 408/429) permanent, anything else transient."""
    if not url.startswith(("http://", "https://")):
        raise PermanentError(f"{url!r}: only http(s) webhooks are delivered")
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    request = urllib.request.Request(  # noqa: S310 - http(s) only, checked above
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": "EmailConnector-Webhook/1",
            SIGNATURE_HEADER: sign(secret, body, int(time.time())),
            DELIVERY_HEADER: delivery_id,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - admins set the URL
            response.read(1024)
    except urllib.error.HTTPError as exc:
        message = f"{url} answered {exc.code} {exc.reason}"
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise PermanentError(message, kind="protocol") from None
        raise TransientError(message, kind="protocol") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TransientError(f"{url} could not be reached: {reason}", kind="network") from None
