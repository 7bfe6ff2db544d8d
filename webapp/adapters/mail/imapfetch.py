"""UID FETCH with the responses read straight off the connection.

imapclient's ``fetch`` reads responses through imaplib's generic machinery, which costs about a
millisecond of CPU per message here — more than TLS and the rest of the fetch together (docs/benchmarks.md).
This reader sends the command through imaplib as usual (tags, state checks), then reads lines and literals
from the same buffered connection itself until the tagged reply, and leaves the parsing of each small
FETCH line to imapclient's own response parser. What it does not need (other untagged responses) it
skips; anything it cannot read is an error, never a silently shorter result.
"""

from __future__ import annotations

import imaplib
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO, cast

import imapclient
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError
from imapclient.response_parser import parse_fetch_response

# The versions this reader was written and tested for (tests/adapters/test_imapfetch.py checks the
# internals it uses): elsewhere ImapSession falls back to imapclient's own FETCH.
WRITTEN_FOR_IMAPCLIENT = ("4.1.0",)
WRITTEN_FOR_PYTHON = ((3, 11), (3, 12), (3, 13))
_MAX_LINE = 1_000_000  # imaplib's own limit for one response line
_LITERAL = re.compile(rb"\{(\d+)\}\r\n\Z")
_FETCH = re.compile(rb"\* (\d+) FETCH (.*)\r\n\Z", re.IGNORECASE | re.DOTALL)
_TAGGED = re.compile(rb"(?P<status>[A-Za-z]+)(?: (?P<text>.*))?\r\n\Z", re.DOTALL)

Piece = bytes | tuple[bytes, bytes]


def uid_set(uids: Iterable[int]) -> str:
    """``1:3,7,9:12``: a short command line whatever the number of UIDs."""
    ranges: list[list[int]] = []
    for uid in sorted(set(uids)):
        if ranges and uid == ranges[-1][1] + 1:
            ranges[-1][1] = uid
        else:
            ranges.append([uid, uid])
    return ",".join(str(a) if a == b else f"{a}:{b}" for a, b in ranges)


def uid_fetch(client: IMAPClient, uids: Sequence[int], items: str) -> dict[int, dict[bytes, Any]]:
    """``UID FETCH uids (UID items)``: each requested UID the server answered for, with its items parsed
    as imapclient would (``{b"FLAGS": (...), b"BODY[]": b"...", ...}``). Unsolicited FETCH responses
    (flag changes of other messages, responses without a UID) are left out."""
    if not uids:
        return {}
    imap = client._imap  # imapclient's imaplib connection: we read its responses ourselves (see above)
    tag = imap._command("UID", "FETCH", uid_set(uids), f"(UID {items})")
    wanted = set(uids)
    result: dict[int, dict[bytes, Any]] = {}
    for pieces in _responses_until(imap, tag):
        for data in parse_fetch_response(pieces, normalise_times=False, uid_is_key=False).values():
            uid = data.get(b"UID")
            if isinstance(uid, int) and uid in wanted:
                result.setdefault(uid, {}).update(data)
    return result


def _responses_until(imap: imaplib.IMAP4, tag: bytes) -> list[list[Piece]]:
    """The untagged FETCH responses up to the reply tagged ``tag``, in imaplib's form (a literal comes as
    ``(line, bytes)``); raises IMAPClientError when the command fails."""
    responses: list[list[Piece]] = []
    while True:
        line = _line(imap)
        if line.startswith(tag + b" "):
            imap.tagged_commands.pop(tag, None)
            reply = _TAGGED.match(line, len(tag) + 1)
            status = reply.group("status").upper() if reply else b""
            if status == b"OK":
                return responses
            text = (reply.group("text") or b"") if reply else line
            raise IMAPClientError(f"fetch failed: {status.decode('ascii', 'replace')} {_text(text)}")
        if line.upper().startswith(b"* BYE"):
            raise imaplib.IMAP4.abort(f"the server closed the connection: {_text(line[5:])}")
        fetch = _FETCH.match(line)
        # imaplib's form: "12 (UID 5 BODY[] {3}" then, after each literal, the rest of the response.
        text = fetch.group(1) + b" " + fetch.group(2) if fetch else line[:-2]
        pieces: list[Piece] = []
        while (literal := _LITERAL.search(line)) is not None:
            size = int(literal.group(1))
            data = _reader(imap).read(size)
            if len(data) != size:
                raise imaplib.IMAP4.abort("socket error: EOF in the middle of a message")
            pieces.append((text, data))
            line = _line(imap)
            text = line[:-2]
        pieces.append(text)
        if fetch is not None:
            responses.append(pieces)


def _line(imap: imaplib.IMAP4) -> bytes:
    line = _reader(imap).readline(_MAX_LINE + 1)
    if not line:
        raise imaplib.IMAP4.abort("socket error: EOF")
    if len(line) > _MAX_LINE or not line.endswith(b"\r\n"):
        raise imaplib.IMAP4.abort("the server sent a response line that is too long or cut off")
    return line


def _reader(imap: imaplib.IMAP4) -> BinaryIO:
    return cast(BinaryIO, imap.file)  # a buffered binary reader (socket.makefile("rb"))


def _text(value: bytes) -> str:
    return value.strip().decode("utf-8", "replace")


def _internals_present() -> bool:
    """imaplib's and imapclient's internals this reader relies on are where it expects them."""
    return (
        callable(getattr(imaplib.IMAP4, "_command", None))
        and "tagged_commands" in imaplib.IMAP4.__init__.__code__.co_names
        and "file" in imaplib.IMAP4.open.__code__.co_names
        and "_imap" in IMAPClient.__init__.__code__.co_names
    )


USABLE = (
    imapclient.__version__ in WRITTEN_FOR_IMAPCLIENT
    and sys.version_info[:2] in WRITTEN_FOR_PYTHON
    and _internals_present()
)
