"""Signed links to a message's inline (``cid:``) images, for the sandboxed frame that shows its HTML.

The frame has an opaque origin, so the browser sends the session cookie with none of its requests
(SameSite); each inline image therefore gets a link signed for the login session that opened the page
(its stored key, ``sessions.key_of``: the link does not reveal the cookie's token), valid for an hour
and only while that session lives: after logout, a new password or an admin ending it, the link is
refused to anyone holding it. The route checks the signature and the session, then — as for any
request — that the session's user may read the message.
"""

from __future__ import annotations

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

MAX_AGE = 3600


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="inline-image")


def sign(session_key: str, message_id: int, attachment_id: int) -> str:
    """A token for the session stored under ``session_key`` and this one image."""
    return _serializer().dumps([session_key, message_id, attachment_id])


def session_key_of(token: str, message_id: int, attachment_id: int, max_age: int = MAX_AGE) -> str | None:
    """The session key the token was signed for, if it is genuine, recent and for this very image."""
    try:
        session_key, signed_message, signed_attachment = _serializer().loads(token, max_age=max_age)
    except (BadSignature, ValueError, TypeError):
        return None
    if (signed_message, signed_attachment) != (message_id, attachment_id) or not isinstance(session_key, str):
        return None
    return session_key
