"""Signed links to a message's inline (``cid:``) images, for the sandboxed frame that shows its HTML.

The frame has an opaque origin, so the browser sends the session cookie with none of its requests
(SameSite); each inline image therefore gets a link signed for the user who opened the page, valid for
an hour. The route checks the signature, then — as for any request — that this user may read the message.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

MAX_AGE = 3600


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="inline-image")


def sign(session_id: str, message_id: int, attachment_id: int) -> str:
    """A token for ``session_id`` (the user's login id: a new password invalidates it) and this image."""
    return _serializer().dumps([session_id, message_id, attachment_id])


def session_id_of(token: str, message_id: int, attachment_id: int, max_age: int = MAX_AGE) -> str | None:
    """The login id the token was signed for, if it is genuine, recent and for this very image."""
    try:
        session_id, signed_message, signed_attachment = _serializer().loads(token, max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        return None
    if (signed_message, signed_attachment) != (message_id, attachment_id) or not isinstance(session_id, str):
        return None
    return session_id
