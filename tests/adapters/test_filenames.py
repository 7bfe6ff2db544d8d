"""Filenames fit to show and save: invisible and direction-changing characters are dropped."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webapp.adapters.mime.filenames import clean_filename

INVISIBLE = [chr(c) for c in (*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2066, 0x206A))]


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("\u2067report\u2069.pdf", "report.pdf"),
        ("zero\u200bwidth\u200d\u200c.txt", "zerowidth.txt"),
        ("bom\ufeff soft\u00adhyphen.txt", "bom softhyphen.txt"),
        ("tag\U000e0041.txt", "tag.txt"),
        ("line\u2028sep\u2029.txt", "line sep .txt"),
        ("a\tb\r\nc\x00d\x1b.txt", "a b cd.txt"),
        ("C:\\Users\\x\\secret.doc", "secret.doc"),
        ("../../etc/passwd", "passwd"),
        ("  Bericht   ä  .pdf ", "Bericht ä .pdf"),
        ("東京 ✉.txt", "東京 ✉.txt"),
        ("\u202e", ""),
        ("x" * 300, "x" * 255),
    ],
)
def test_filenames_are_cleaned(name: str, clean: str) -> None:
    assert clean_filename(name) == clean


@pytest.mark.parametrize("char", INVISIBLE)
def test_every_listed_invisible_character_goes(char: str) -> None:
    assert clean_filename(f"a{char}b.txt") == "ab.txt"


@given(st.text(max_size=80))
def test_no_control_or_format_character_survives(name: str) -> None:
    cleaned = clean_filename(name)
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") for c in cleaned)
    assert "/" not in cleaned and "\\" not in cleaned and len(cleaned) <= 255
