"""What the two account forms (the setup wizard and Manual settings) share: the typed password carried
sealed between requests, and the usual ports for the page's script (the port follows the security)."""

from __future__ import annotations

import time
from typing import Any

from flask_login import current_user

from webapp.adapters.mail.endpoint import DEFAULT_PORTS
from webapp.adapters.storage.secretbox import SecretBoxError
from webapp.services.errors import Invalid
from webapp.services.platform import secretstore

# A wizard token is not a stored password's token (one could not be passed off as the other), and it is
# good for the admin who typed the password, for an hour: an old page's token is no key for long.
_TOKEN_PREFIX = "setup-wizard"
TOKEN_SECONDS = 3600


def seal_password(password: str) -> str:
    """The token the page carries instead of the password."""
    return secretstore.encrypt(f"{_TOKEN_PREFIX}:{current_user.id}:{int(time.time())}:{password}")


def unseal_password(token: str) -> str:
    """The password a token of :func:`seal_password` carries; Invalid when it is not one, another admin's, or
    older than an hour."""
    again = Invalid("password: type it again (step 2; the wizard keeps it for an hour)")
    try:
        prefix, user_id, sealed_at, password = secretstore.decrypt(token).split(":", 3)
    except (SecretBoxError, ValueError, TypeError):
        raise again from None
    fresh = sealed_at.isdigit() and 0 <= time.time() - int(sealed_at) <= TOKEN_SECONDS
    if prefix != _TOKEN_PREFIX or user_id != str(current_user.id) or not fresh:
        raise again
    return password


def ports_map() -> dict[str, Any]:
    """The usual ports, for the page's script (port follows security)."""
    return {f"{protocol}:{security}": port for (protocol, security), port in DEFAULT_PORTS.items()}
