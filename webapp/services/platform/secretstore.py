"""Secrets at rest: encrypting, decrypting and re-encrypting every stored secret under a new key."""

from __future__ import annotations

from pathlib import Path

from flask import current_app
from sqlalchemy import select

from webapp.adapters.storage import keyfile
from webapp.adapters.storage.secretbox import SecretBox, generate_key, parse_keys
from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount, OAuthProvider, Webhook

# Every encrypted column: (model, attribute). Later secrets (OAuth, signing keys) are added here.
ENCRYPTED_COLUMNS: list[tuple[type, str]] = [
    (EmailAccount, "password_encrypted"),
    (EmailAccount, "oauth_token_cache_encrypted"),
    (Webhook, "secret_encrypted"),
    (OAuthProvider, "client_secret_encrypted"),
]


def box() -> SecretBox:
    """A SecretBox with the app's ``ENCRYPTION_KEYS`` (newest first)."""
    return SecretBox(current_app.config["ENCRYPTION_KEYS"])


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` under the newest key, for a column of ``ENCRYPTED_COLUMNS``."""
    return box().encrypt(plaintext)


def decrypt(token: str) -> str:
    """Decrypt a stored secret; SecretBoxError when none of the configured keys fits."""
    return box().decrypt(token)


@writes
def rotate_keys() -> tuple[bool, int]:
    """Put a new key first (when the keys live in the instance folder) and re-encrypt every secret.

    Returns (whether a key was added, how many secrets were re-encrypted). The new key is saved before
    any secret is touched and old keys are kept, so an interrupted run loses nothing and can be rerun.
    With keys from ``EMAILCONNECTOR_ENCRYPTION_KEYS``, the operator puts the new key first there and
    this re-encrypts under it.
    """
    added = False
    path = current_app.config.get("ENCRYPTION_KEYS_FILE")
    if path:
        keys = [generate_key(), *current_app.config["ENCRYPTION_KEYS"]]
        keyfile.replace(Path(path), "\n".join(keys))
        current_app.config["ENCRYPTION_KEYS"] = parse_keys(keys)
        added = True
    secretbox = box()
    count = 0
    for model, attribute in ENCRYPTED_COLUMNS:
        column = getattr(model, attribute)
        ids = db.session.scalars(select(model.id).where(column.is_not(None))).all()  # type: ignore[attr-defined]
        for row_id in ids:
            # One short transaction per secret: progress survives an interruption.
            row = db.session.get(model, row_id)
            if row is None:
                continue
            setattr(row, attribute, secretbox.rotate(getattr(row, attribute)))
            db.session.commit()
            count += 1
    return added, count
