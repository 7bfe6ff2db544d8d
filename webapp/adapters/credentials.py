"""Login credentials handed to the protocol adapters."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    username: str
    # repr=False: a credentials object that ends up in a log or traceback shows no password.
    password: str = field(repr=False)
