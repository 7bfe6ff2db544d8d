"""Usernames are NFKC-normalised and may hold no control, format (bidi, zero-width) or other invisible
characters; names that look alike after normalising are one name."""

from __future__ import annotations

import pytest

from tests.conftest import TEST_PASSWORD
from webapp.services.errors import Conflict, Invalid
from webapp.services.identity import users

INVISIBLE = [
    *(chr(c) for c in range(0x200B, 0x2010)),  # zero-width space/non-joiner/joiner, LRM, RLM
    *(chr(c) for c in range(0x202A, 0x202F)),  # LRE, RLE, PDF, LRO, RLO
    *(chr(c) for c in range(0x2066, 0x206A)),  # LRI, RLI, FSI, PDI
    "\u00ad",  # soft hyphen (Cf)
    "\u061c",  # Arabic letter mark (Cf)
    "\u2060",  # word joiner (Cf)
    "\ufeff",  # zero-width no-break space / BOM (Cf)
    "\U000e0041",  # tag letter (Cf)
    "\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b",  # C0, DEL, C1 controls (Cc)
    "\u2028", "\u2029",  # line and paragraph separators
    "\u00a0", "\u3000",  # spaces that NFKC turns into a plain space
    "\ue000",  # private use
    "\U0010ffff",  # not a character
]  # fmt: skip


@pytest.mark.parametrize("char", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_and_control_characters_are_refused(char: str) -> None:
    # Spaces around a name are trimmed (as typed in a form); inside it, and anything else anywhere, refused.
    places = (f"b{char}ob",) if char.isspace() else (f"bob{char}", f"{char}bob", f"b{char}ob")
    for name in places:
        with pytest.raises(Invalid, match="no spaces, control or invisible characters"):
            users.validate_username(name)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("\uff42\uff4f\uff42", "bob"),  # fullwidth letters
        ("\ufb01ona", "fiona"),  # ligature fi
        ("\u216b-team", "XII-team"),  # roman numeral twelve
        ("e\u0301mile", "émile"),  # decomposed accent composed
        ("  alice  ", "alice"),
        ("Jürgen", "Jürgen"),
        ("مريم", "مريم"),  # right-to-left letters themselves are fine
    ],
)
def test_names_are_stored_in_nfkc(given: str, stored: str) -> None:
    assert users.validate_username(given) == stored


def test_names_that_normalise_alike_are_one_user(app, make_user) -> None:
    make_user("\ufb01ona")
    assert users.get("fiona").username == "fiona"
    assert users.find("\uff26\uff29\uff2f\uff2e\uff21") is not None
    with pytest.raises(Conflict):
        users.create("FIONA", TEST_PASSWORD)
    with pytest.raises(Invalid):
        users.create("fi\u200bona", TEST_PASSWORD)


def test_the_admin_page_refuses_a_hidden_character(client, make_user, login, post_form) -> None:
    make_user("boss", role="admin")
    login("boss")
    response = post_form("/admin/users", {"username": "adm\u202ein", "password": TEST_PASSWORD})
    assert "no spaces, control or invisible characters" in response.get_data(as_text=True)
    assert [u.username for u in users.all_users()] == ["boss"]


def test_login_finds_the_normalised_name(client, make_user, login) -> None:
    make_user("bob")
    assert login("\uff42\uff4f\uff42").status_code == 302
