"""Parsing received messages into plain values: headers, bodies and parts. It never raises.

A message that cannot be parsed still yields what could be read (best-effort headers) and ``error``
saying why; the caller keeps the raw bytes either way. Strings come back as valid Unicode without NUL,
so they can be stored in any database.
"""

from __future__ import annotations

import binascii
import email
import email.policy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime

from webapp.adapters.mime import mimetree
from webapp.adapters.mime.filenames import clean_filename

FAST_TREE_BYTES = 32 * 1024
MAX_PARTS = 500  # a message with more parts than this is cut off there, with a note
# Defects that mean the MIME structure itself could not be read: the message is quarantined (kept raw,
# shown as such) although a best-effort body is still extracted.
STRUCTURAL_DEFECTS = frozenset(
    {"StartBoundaryNotFoundDefect", "MultipartInvariantViolationDefect", "NoBoundaryInMultipartDefect"}
)


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str


@dataclass(frozen=True)
class ParsedPart:
    """An attachment or inline part with its decoded bytes."""

    filename: str
    content_type: str
    content: bytes = field(repr=False)
    content_id: str = ""
    inline: bool = False
    # Set when the bytes were already put in the blob store (by a parsing process): content is then empty.
    sha256: str = ""
    size: int = 0


@dataclass(frozen=True)
class ParsedMessage:
    message_id: str | None = None
    subject: str = ""
    sender: Mailbox | None = None
    to: tuple[Mailbox, ...] = ()
    cc: tuple[Mailbox, ...] = ()
    bcc: tuple[Mailbox, ...] = ()
    reply_to: tuple[Mailbox, ...] = ()
    date: datetime | None = None
    text: str = ""
    html: str = ""
    parts: tuple[ParsedPart, ...] = ()
    defects: tuple[str, ...] = ()
    error: str | None = None


def clean(value: str) -> str:
    """Turn surrogate-escaped bytes back into text (UTF-8, else replacement characters) and drop NUL."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return value.replace("\x00", "")


def parse(raw: bytes, *, headers: bool = True) -> ParsedMessage:
    """Parse ``raw``; on failure return best-effort headers with ``error`` set. ``headers=False`` leaves
    the header fields empty, for a message whose headers were stored already (:func:`parse_headers`)."""
    # compat32 is three times faster than the default policy; headers come from our own fast reader;
    # big messages are cut into parts by mimetree (the feed parser reads them line by line).
    try:
        tree = mimetree.build(raw) if len(raw) >= FAST_TREE_BYTES else None
        message = tree or email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception as exc:  # noqa: BLE001 - the stdlib parser can fail in many ways on hostile input
        return ParsedMessage(error=f"unreadable message: {_describe(exc)}")
    fast = parse_headers(raw) if headers else ParsedMessage()
    values = {
        name: getattr(fast, name) for name in ("message_id", "subject", "sender", "to", "cc", "bcc", "reply_to", "date")
    }
    try:
        body = _Body()
        body.collect(message)
    except Exception as exc:  # noqa: BLE001
        return ParsedMessage(**values, error=f"the MIME structure cannot be read: {_describe(exc)}")
    defects = sorted({type(d).__name__ for part in message.walk() for d in part.defects})
    structural = [d for d in defects if d in STRUCTURAL_DEFECTS]
    error = f"broken MIME structure ({', '.join(structural)})" if structural else None
    if body.truncated:
        defects.append(f"more than {MAX_PARTS} parts; the rest are only in the raw message")
    return ParsedMessage(
        **values,
        text=body.text,
        html=body.html,
        parts=tuple(body.parts),
        defects=tuple(body.notes + defects),
        error=error,
    )


def _describe(exc: Exception) -> str:
    return clean(f"{type(exc).__name__}: {exc}")[:500]


def _message_id(value: str) -> str | None:
    value = value.strip().split()[0] if value.strip() else ""
    value = value.strip("<>")
    return value[:995] or None


class _Body:
    """Walks the MIME tree: the first text and HTML bodies, and every other leaf as a part."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.html = ""
        self.parts: list[ParsedPart] = []
        self.notes: list[str] = []
        self.truncated = False
        self.count = 0

    @property
    def text(self) -> str:
        return "\n".join(self.texts)

    def collect(self, part: Message, depth: int = 0) -> None:
        self.count += 1
        if self.count > MAX_PARTS:
            self.truncated = True
            return
        content_type = part.get_content_type()
        if content_type == "message/rfc822":
            self._attach_message(part)
            return
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list) and depth < 50:
                for child in payload:
                    if isinstance(child, Message):
                        self.collect(child, depth + 1)
            return
        disposition = _disposition(part)
        filename = _filename(part)
        if part.get_content_maintype() == "multipart":  # its boundary never appears: the rest is text
            self.texts.append(_lines(_raw_payload(part).decode("utf-8", "replace")))
            return
        if content_type in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text = _text_of(part, self.notes)
            if content_type == "text/plain":
                self.texts.append(text)
                return
            if not self.html:
                self.html = text
                return
        self._attach_leaf(part, content_type, disposition, filename)

    def _attach_leaf(self, part: Message, content_type: str, disposition: str | None, filename: str) -> None:
        content = _decoded(part)
        if not isinstance(content, bytes):
            content = _raw_payload(part)
        content_id = clean(str(part.get("Content-ID", "") or "")).strip().strip("<>")
        inline = disposition == "inline" or (bool(content_id) and disposition != "attachment")
        if not filename:
            filename = f"part-{len(self.parts) + 1}{_extension(content_type)}"
        self.parts.append(ParsedPart(filename, content_type, content, content_id[:255], inline))

    def _attach_message(self, part: Message) -> None:
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        try:
            content = inner.as_bytes() if isinstance(inner, Message) else _raw_payload(part)
        except Exception:  # noqa: BLE001
            content = _raw_payload(part)
        subject = (
            " ".join(_decode_words(clean(str(inner.get("Subject", "")))).split()) if isinstance(inner, Message) else ""
        )
        filename = _filename(part) or f"{_safe_stem(subject) or 'message'}.eml"
        self.parts.append(ParsedPart(filename, "message/rfc822", content, "", False))


def _disposition(part: Message) -> str | None:
    try:
        return part.get_content_disposition()
    except Exception:  # noqa: BLE001
        return None


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:  # noqa: BLE001
        name = ""
    # RFC 2231 is decoded by the parser; RFC 2047 in a filename is not standard but common. Bidi
    # overrides and other invisible characters go (invoice\u202efdp.exe), and any path: a name is never one.
    return clean_filename(_decode_words(clean(str(name))))


def _decoded(part: Message) -> bytes | None:
    """The part's decoded bytes (None if it cannot be decoded)."""
    payload = part.get_payload()
    if isinstance(payload, str) and str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
        # binascii skips the line breaks itself: email's own path splits and joins every line first, which
        # took a tenth of the parsing time of a mailbox with attachments. Bad padding goes the slow way.
        try:
            return binascii.a2b_base64(payload.encode("ascii", "surrogateescape"))
        except (binascii.Error, ValueError):
            pass
    try:
        decoded = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        return None
    return decoded if isinstance(decoded, bytes) else None


def _text_of(part: Message, notes: list[str]) -> str:
    data = _decoded(part)
    if not isinstance(data, bytes):
        data = _raw_payload(part)
    charset = (part.get_content_charset() or "utf-8").strip().lower()
    if charset in ("us-ascii", "ascii", "unknown-8bit", "x-unknown"):
        charset = "utf-8"  # a superset; mislabelled 8-bit mail is common
    try:
        return _lines(data.decode(charset, "replace"))
    except LookupError:
        notes.append(f"unknown charset {charset!r}; shown as UTF-8")
    return _lines(data.decode("utf-8", "replace"))


def _lines(text: str) -> str:
    return clean(text).replace("\r\n", "\n")


def _raw_payload(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogateescape")
    return b""


def _extension(content_type: str) -> str:
    import mimetypes

    return {"text/plain": ".txt", "text/html": ".html"}.get(content_type) or (
        mimetypes.guess_extension(content_type) or ".bin"
    )


def _safe_stem(subject: str) -> str:
    return "".join(c if c.isalnum() or c in " -_." else "_" for c in subject).strip()[:80]


_WANTED = frozenset({"message-id", "subject", "from", "to", "cc", "bcc", "reply-to", "date"})
_FOLD = re.compile(r"\r?\n(?=[ \t])")


def parse_headers(raw: bytes) -> ParsedMessage:
    """Read only the header block, fast (what the mailbox lists before the bodies are parsed)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        end = raw.find(b"\n\n")
    block = raw if end < 0 else raw[:end]
    try:
        found: dict[str, list[str]] = {}
        for line in _FOLD.sub("", block.decode("utf-8", "replace")).split("\n"):
            name, colon, value = line.partition(":")
            key = name.strip().lower()
            if colon and key in _WANTED:
                found.setdefault(key, []).append(value.strip().replace("\x00", ""))

        def first(key: str) -> str:
            return found.get(key, [""])[0]

        def boxes(key: str) -> tuple[Mailbox, ...]:
            return _boxes(found.get(key, []))

        return ParsedMessage(
            message_id=_message_id(first("message-id")),
            subject=" ".join(_decode_words(first("subject")).split()),
            sender=next(iter(boxes("from")), None),
            to=boxes("to"),
            cc=boxes("cc"),
            bcc=boxes("bcc"),
            reply_to=boxes("reply-to"),
            date=_parse_date(first("date")),
        )
    except Exception as exc:  # noqa: BLE001 - never raise: the full parse will say more
        return ParsedMessage(error=f"unreadable headers: {_describe(exc)}")


def _decode_words(value: str) -> str:
    if "=?" not in value:
        return value
    try:
        return clean(str(make_header(decode_header(value))))
    except Exception:  # noqa: BLE001 - a broken encoded word: keep it as it is
        return value


def _boxes(values: list[str]) -> tuple[Mailbox, ...]:
    found = []
    for display, address in getaddresses(values):
        if address or display:
            found.append(Mailbox(clean(_decode_words(display)), clean(address)))
    return tuple(found)


def _parse_date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
