"""Header injection attempts through RFC 2047 encoded words (and raw), shared by the tests of every path
that builds a message: the MIME adapter, the sending service, the compose page and the CLI.

Python 3.11.7's email package turns a decoded CR/LF into a real header line (CVE-2024-6923); a language
suffix (``utf-8*en``) or an unknown charset made the old check fall back to the raw value.
"""

from __future__ import annotations

import base64


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


INJECTIONS = {
    "language suffix": "=?utf-8*en?q?Invoice=0D=0AX-Injected:_yes=0D=0AReply-To:_attacker@evil.test?=",
    "unknown charset": "=?x-unknown?q?Invoice=0D=0AX-Injected:_yes?=",
    "unknown charset alone": "=?x-unknown?q?Invoice?=",
    "LF only": "=?utf-8?q?Invoice=0AX-Injected:_yes?=",
    "CR only": "=?utf-8?q?Invoice=0DX-Injected:_yes?=",
    "NUL": "=?utf-8?q?Invoice=00X-Injected:_yes?=",
    "B encoding": "=?utf-8?b?" + _b64("Invoice\r\nX-Injected: yes") + "?=",
    "B encoding without padding": "=?UTF-8?B?" + _b64("Invoice\nX-Injected: yes").rstrip("=") + "?=",
    "Q encoding in capitals": "=?UTF-8?Q?Invoice=0d=0aX-Injected:_yes?=",
    "valid word, then unknown charset": "=?utf-8?q?Invoice?= =?x-unknown?q?=0D=0AX-Injected:_yes?=",
    "line break, then unknown charset": "=?utf-8?q?Invoice=0D=0AX-Injected:_yes?= =?x-unknown?q?abc?=",
    "language suffix and unknown charset": "=?x-unknown*en?q?Invoice=0AX-Injected:_yes?=",
    "UTF-7 (no CR/LF byte)": "=?utf-7?q?Invoice+AA0ACg-X-Injected:_yes?=",
    "EBCDIC (no CR/LF byte)": "=?cp037?q?Invoice=25X-Injected:_yes?=",
    "'?' in the text (a lenient reader's word)": "=?utf-8?q?Invoice?X=0D=0AX-Injected:_yes?=",
    "inside a word": "Invoice=?utf-8?q?=0D=0AX-Injected:_yes?=",
    "space inside the word": "=?utf-8?q?Invoice=0D=0AX-Injected: yes?=",
    "vertical tab": "=?utf-8?q?Invoice=0BX?=",
    "raw CRLF": "Invoice\r\nX-Injected: yes",
    "raw LF": "Invoice\nX-Injected: yes",
    "raw NUL": "Invoice\x00",
}
# Values a file can be named on Linux (no "/"), for the CLI's --attach.
FILE_NAMES = {k: v for k, v in INJECTIONS.items() if "/" not in v and "\x00" not in v}
ENCODED = {k: v for k, v in INJECTIONS.items() if not k.startswith("raw")}
REASONS = ("line break", "unknown charset", "control character")


def refused_for_a_reason(message: str) -> bool:
    """True when ``message`` says why (a line break, an unknown charset, a control character)."""
    return any(reason in message for reason in REASONS)
