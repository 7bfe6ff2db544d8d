"""The one check for CR, LF and NUL in values that end up on a protocol line or in a header."""

from __future__ import annotations

LINE_BREAKS = ("\r", "\n", "\0")


def has_line_break(*values: str) -> bool:
    """True when any value holds CR, LF or NUL (each would end or split a command line)."""
    return any(c in value for value in values for c in LINE_BREAKS)
