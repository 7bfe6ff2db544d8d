"""Encryption of secrets at rest with Fernet keys, newest first (the Mendix "EncryptionKey")."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBoxError(Exception):
    """A secret could not be decrypted with any configured key."""


def generate_key() -> str:
    """Return a new Fernet key as text."""
    return Fernet.generate_key().decode("ascii")


def parse_keys(value: str | list[str] | tuple[str, ...]) -> list[str]:
    """Split a comma-separated key list (or pass a list through), dropping blanks."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [item.strip() for item in items if item and item.strip()]


class SecretBox:
    """Encrypts with the first key; decrypts with any of them."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is required")
        try:
            self._fernet = MultiFernet([Fernet(key.encode("ascii")) for key in keys])
        except (ValueError, UnicodeEncodeError) as exc:
            raise ValueError("an encryption key is not a valid Fernet key (32 url-safe base64-encoded bytes)") from exc

    def encrypt(self, plaintext: str) -> str:
        """Encrypt ``plaintext`` with the first (newest) key; return the Fernet token as text."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Decrypt a token made with any of the keys; SecretBoxError when none of them fits."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise SecretBoxError("a stored secret cannot be decrypted with the configured keys") from exc

    def rotate(self, token: str) -> str:
        """Re-encrypt ``token`` under the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise SecretBoxError("a stored secret cannot be decrypted with the configured keys") from exc
