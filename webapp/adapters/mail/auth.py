"""How an adapter logs in: a parameter object, so the services stay the same whatever the method.

``PasswordAuth`` (LOGIN/PLAIN, USER/PASS) or ``XOAuth2Auth`` (SASL XOAUTH2 with a bearer token, as
Microsoft 365 and Gmail take it); every session class takes an ``Auth``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from webapp.adapters.mime.linebreaks import has_line_break


@dataclass(frozen=True)
class PasswordAuth:
    username: str
    # repr=False: an auth object that ends up in a log or traceback shows no password.
    password: str = field(repr=False)


@dataclass(frozen=True)
class XOAuth2Auth:
    """SASL XOAUTH2: the mailbox's address as the user and an OAuth 2.0 access token. ``token`` is asked
    for at each login, so a token refreshed meanwhile is the one sent."""

    username: str
    token: Callable[[], str] = field(repr=False)

    def sasl(self) -> str:
        """The XOAUTH2 initial response (before base64): ``user=…^Aauth=Bearer …^A^A``."""
        token = self.token()
        if has_line_break(self.username, token) or "\x01" in self.username + token:
            raise ValueError("a line break, NUL or ^A in the XOAUTH2 user or token")
        return f"user={self.username}\x01auth=Bearer {token}\x01\x01"


Auth = PasswordAuth | XOAuth2Auth
