"""Attachment filenames fit to show and to save: no invisible characters, no path.

Bidi overrides and isolates (U+202A-U+202E, U+2066-U+2069), zero-width and direction marks
(U+200B-U+200F) and every other control or format character are dropped, so ``invoice\u202efdp.exe``
shows as what it is: ``invoicefdp.exe``.
"""

from __future__ import annotations

import unicodedata

MAX_LENGTH = 255
# Cc control, Cf format (bidi, zero-width, BOM, soft hyphen, tags), Cs lone surrogates, Zl/Zp separators.
_DROPPED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def strip_invisible(name: str) -> str:
    """``name`` without control, format and line/paragraph separator characters."""
    return "".join(c for c in name if unicodedata.category(c) not in _DROPPED)


def clean_filename(name: str) -> str:
    """The last path element of ``name``, without invisible characters, spaces collapsed, at most 255
    characters; empty when nothing visible is left."""
    visible = " ".join(strip_invisible(" ".join(name.split())).split())
    return visible.replace("\\", "/").rsplit("/", 1)[-1].strip()[:MAX_LENGTH]
