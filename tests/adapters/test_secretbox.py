from __future__ import annotations

import pytest

from webapp.adapters.storage.secretbox import SecretBox, SecretBoxError, generate_key, parse_keys


def test_encrypts_with_the_first_key_and_decrypts_with_any() -> None:
    old, new = generate_key(), generate_key()
    token = SecretBox([old]).encrypt("pässword")
    assert "pässword" not in token
    box = SecretBox([new, old])
    assert box.decrypt(token) == "pässword"
    rotated = box.rotate(token)
    assert SecretBox([new]).decrypt(rotated) == "pässword"
    with pytest.raises(SecretBoxError):
        SecretBox([old]).decrypt(rotated)


def test_a_wrong_key_is_refused_without_showing_it() -> None:
    with pytest.raises(ValueError, match="not a valid Fernet key") as info:
        SecretBox(["not-a-key-secret"])
    assert "not-a-key-secret" not in str(info.value)


def test_parse_keys_splits_commas_and_drops_blanks() -> None:
    assert parse_keys(" a , ,b,") == ["a", "b"]
