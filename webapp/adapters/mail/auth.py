"""How an adapter logs in: a parameter object, so the services stay the same whatever the method.

``PasswordAuth`` today; ``XOAuth2Auth(user, token_provider)`` arrives with OAuth (SASL XOAUTH2), and every
session class takes an ``Auth``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PasswordAuth:
    username: str
    # repr=False: an auth object that ends up in a log or traceback shows no password.
    password: str = field(repr=False)


Auth = PasswordAuth
