"""Building outgoing MIME messages that say exactly what was intended, or refusing to.

Two guards against header injection. Before building, every header value, display name and
attachment filename is refused when it holds CR, LF, NUL or another control character, as given or
after any RFC 2047 decoding a reader might apply: our own tolerant decoder tries every encoded word
(language suffixes such as ``utf-8*en``, any extent a decoder might take) and refuses words it
cannot decode cleanly (unknown charset, bytes not valid in it). After building, the bytes are parsed
back and compared with what was built, header by header and MIME part by MIME part (names, count,
decoded values, filename parameters, addresses); any difference is refused. Python before 3.11.10 and
3.12.5 re-folds a decoded line break into a real header line (CVE-2024-6923): these guards do not
rely on the fix.
"""

from __future__ import annotations

import binascii
import email
import functools
import mimetypes
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from email.utils import format_datetime, make_msgid

from webapp.adapters.errors import PermanentError
from webapp.adapters.mime import addresses
from webapp.adapters.mime.addresses import AddressError, Mailbox
from webapp.adapters.mime.filenames import clean_filename
from webapp.adapters.mime.htmltext import html_to_text

_CONTENT_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
# An encoded word as Python's email package reads one: four "?" in all (it splits the word on them).
_ENCODED_WORD = re.compile(r"=\?([^?]*)\?([^?]*)\?([^?]*)\?=")
# ... and as a lenient reader might, with "?" in the text; bounded (RFC 2047 words are at most 75
# characters), which also keeps the check linear in the length of the value.
_LOOSE_WORD = re.compile(r"=\?([^?\s]{0,75})\?([^?\s]{0,10})\?(.{0,400}?)\?=", re.DOTALL)
_Q_ESCAPE = re.compile(rb"=([0-9A-Fa-f]{2})")
_ADDRESS_HEADERS = ("from", "to", "cc", "reply-to")


class HeaderError(PermanentError):
    """A header value or address that must not be sent; the message names it."""


class VerificationError(HeaderError):
    """The built message does not say what was intended (a header or part came out different)."""


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    content: bytes = field(repr=False)
    content_type: str = ""


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to build. Recipients are :class:`Mailbox` values or strings (``Name <address>``)."""

    sender: str
    to: tuple[str | Mailbox, ...]
    subject: str
    text: str = ""
    html: str = ""
    cc: tuple[str | Mailbox, ...] = ()
    bcc: tuple[str | Mailbox, ...] = ()
    sender_name: str = ""
    attachments: tuple[OutgoingAttachment, ...] = ()
    reply_to: tuple[str | Mailbox, ...] = ()
    # A reply: the Message-ID it answers, and the thread's References (msg-ids separated by spaces).
    in_reply_to: str = ""
    references: str = ""

    @property
    def recipients(self) -> list[str]:
        """Every envelope recipient, in order, without repeats (BCC included, never as a header)."""
        return list(dict.fromkeys(m.address for m in _mailboxes("recipients", (*self.to, *self.cc, *self.bcc))))


def _control(text: str) -> str | None:
    """What is wrong with ``text`` as (part of) a header value: a line break, a control character."""
    if any(c in text for c in "\r\n\0"):
        return "line break or NUL"
    for char in text:
        code = ord(char)
        if (code < 32 and char != "\t") or 0x7F <= code <= 0x9F or char in "\u2028\u2029":
            return "control character"
        if 0xD800 <= code <= 0xDFFF:
            return "undecodable character"
    return None


def check_header_value(name: str, value: str) -> str:
    """Refuse CR, LF, NUL and other control characters in ``value``, as given and after any RFC 2047
    decoding; refuse encoded words that cannot be decoded cleanly. Return ``value``."""
    problem = _control(value)
    if problem == "line break or NUL":
        raise HeaderError(f"{name}: line breaks and NUL are not allowed")
    if problem:
        raise HeaderError(f"{name}: {problem}s are not allowed")
    if "=?" in value:
        _check_encoded_words(name, value)
    return value


def _check_encoded_words(name: str, value: str) -> None:
    """Decode every encoded word, whatever its charset or language suffix: as Python's email package
    delimits it, it must decode cleanly to text without control characters; as a lenient reader might
    delimit it, its bytes must hold no CR, LF or NUL."""
    for start in (m.start() for m in re.finditer(r"=\?", value)):
        word = _ENCODED_WORD.match(value, start)
        for match in (_LOOSE_WORD.match(value, start), word):
            # The bytes first, whatever the charset: an unknown charset cannot hide a line break.
            data = _word_bytes(match) if match is not None else None
            if data is not None and any(b in data for b in (b"\r", b"\n", b"\0")):
                raise HeaderError(f"{name}: an encoded line break or NUL is not allowed")
        if word is not None:
            _check_word(name, word, _word_bytes(word))


def _check_word(name: str, word: re.Match[str], data: bytes | None) -> None:
    charset_field, encoding, _ = word.groups()
    shown = word.group(0) if len(word.group(0)) <= 60 else word.group(0)[:57] + "..."
    if encoding.upper() not in ("Q", "B"):
        raise HeaderError(f"{name}: {shown!r} is not a valid encoded word (the encoding must be Q or B)")
    if data is None:
        raise HeaderError(f"{name}: {shown!r} cannot be decoded (broken base64)")
    charset = charset_field.partition("*")[0].strip()  # "utf-8*en": RFC 2231 language suffix
    try:
        text = data.decode(charset)  # LookupError also for codecs that are not text encodings
    except LookupError:
        raise HeaderError(
            f"{name}: {shown!r} uses an unknown charset ({charset!r}) and cannot be checked; it is refused"
        ) from None
    except (UnicodeDecodeError, ValueError):
        raise HeaderError(f"{name}: {shown!r} is not valid {charset} and cannot be decoded cleanly") from None
    problem = _control(text)
    if problem:
        raise HeaderError(f"{name}: an encoded {problem} is not allowed")


def _word_bytes(word: re.Match[str]) -> bytes | None:
    """The bytes of an encoded word, decoded as leniently as mail readers do (None: not Q or B)."""
    encoding, text = word.group(2).upper(), word.group(3)
    raw = text.encode("utf-8", "surrogatepass")
    if encoding == "Q":
        return _Q_ESCAPE.sub(lambda m: bytes.fromhex(m.group(1).decode()), raw.replace(b"_", b" "))
    if encoding == "B":
        for padding in (b"", b"=", b"==", b"==="):
            try:
                return binascii.a2b_base64(raw + padding)
            except binascii.Error:
                continue
        return None
    return None


def parse_addresses(field_name: str, value: str) -> tuple[Mailbox, ...]:
    """Parse a list (``;`` or ``,`` between mailboxes, ``Name <address>`` kept); a bad one is named."""
    check_header_value(field_name, value)
    try:
        mailboxes = addresses.parse_list(value)
    except AddressError as exc:
        raise HeaderError(f"{field_name}: {exc}") from None
    for mailbox in mailboxes:
        if mailbox.name:
            check_header_value(f"{field_name}: the name of {mailbox.address}", mailbox.name)
    return mailboxes


def _mailboxes(field_name: str, values: tuple[str | Mailbox, ...]) -> list[Mailbox]:
    """Checked mailboxes from :class:`Mailbox` values and typed strings (a string may hold a list)."""
    result: list[Mailbox] = []
    for value in values:
        if isinstance(value, str):
            result.extend(parse_addresses(field_name, value))
            continue
        try:
            addresses.check_address(value.address)
        except AddressError as exc:
            raise HeaderError(f"{field_name}: {value.address!r} is not a valid email address ({exc})") from None
        if value.name:
            check_header_value(f"{field_name}: the name of {value.address}", value.name)
        result.append(value)
    return result


def _header_form(mailbox: Mailbox, utf8: bool) -> str:
    """``mailbox`` as a header list item: IDNA A-label domain unless the header may be UTF-8; runs of
    whitespace in the name made one space (the email package does not keep them all the same way)."""
    address = mailbox.address if utf8 else addresses.envelope(mailbox.address)
    return addresses.format_mailbox(Mailbox(address, " ".join(mailbox.name.split())))


class _FoldedOnce(BaseHeader):
    """A header object that folds once per policy: the registry below hands the same objects to a run
    of messages, and folding (the generator's part of building) is pure in the value and the policy."""

    def fold(self, *, policy: email_policy.Policy) -> str:
        folds: dict[email_policy.Policy, str] = self.__dict__.setdefault("_folds", {})
        folded = folds.get(policy)
        if folded is None:
            folded = folds[policy] = super().fold(policy=policy)  # keeps the policy alive: no id reuse
        return folded


class _RememberingHeaders(HeaderRegistry):
    """The email package's header registry, remembering what it parsed: parsing a header value (the
    address and parameter grammars) is most of the time of building and checking a message, and a
    run of messages repeats most values (From, Date, the MIME headers). Header objects are immutable
    strings, so one parse can serve every message holding the same value."""

    def __getitem__(self, name: str) -> type[BaseHeader]:
        # The registry makes a new class at every lookup; one per header name serves as well.
        return self._class_of(name.lower())

    @functools.lru_cache(maxsize=256)  # noqa: B019 - as below
    def _class_of(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)

    def __call__(self, name: str, value: str) -> BaseHeader:
        if len(value) > 1000:  # long values are rarely repeated: not kept (bounded memory)
            return super().__call__(name, value)
        return self._remembered(name, value)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one module-level instance, never freed anyway
    def _remembered(self, name: str, value: str) -> BaseHeader:
        return super().__call__(name, value)


_HEADERS = _RememberingHeaders(base_class=_FoldedOnce)
_READ_POLICY = email_policy.default.clone(header_factory=_HEADERS)
# One policy object per kind of message, made once: folded headers are remembered per policy object.
_BUILD_POLICIES = {
    False: email_policy.SMTP.clone(header_factory=_HEADERS, cte_type="7bit", utf8=False),
    # Python 3.11's folder drops the quotes of a long quoted name in UTF-8 headers (the check after
    # building catches it); folding only beyond RFC 5322's hard limit avoids it.
    True: email_policy.SMTP.clone(header_factory=_HEADERS, cte_type="7bit", utf8=True, max_line_length=998),
}


def build(message: OutgoingMessage, *, domain: str | None = None) -> bytes:
    """Return the message as bytes with CRLF line endings, ready for SMTP (BCC is not a header).

    Headers are UTF-8 (RFC 6532, to be sent with SMTPUTF8) only when an address in them has a
    non-ASCII local part; bodies are always 7-bit (quoted-printable or base64). The bytes are parsed
    back and compared with what was built before they are returned (:func:`verify`)."""
    if not message.to:
        raise HeaderError("To: at least one recipient is required")
    if not message.subject.strip():
        raise HeaderError("Subject: required")
    if not message.text and not message.html:
        raise HeaderError("a text or HTML body is required")
    check_header_value("Subject", message.subject)
    (sender,) = _mailboxes("From", (Mailbox(message.sender, message.sender_name),))
    to = _mailboxes("To", message.to)
    cc = _mailboxes("CC", message.cc)
    _mailboxes("BCC", message.bcc)
    reply_to = _mailboxes("Reply-To", message.reply_to)
    if not to:
        raise HeaderError("To: at least one recipient is required")
    attachments = [_attachment(a) for a in message.attachments]
    utf8 = any(addresses.needs_smtputf8(m.address) for m in (sender, *to, *cc, *reply_to))
    built = EmailMessage(policy=_BUILD_POLICIES[utf8])
    built["From"] = _header_form(sender, utf8)
    built["To"] = ", ".join(_header_form(m, utf8) for m in to)
    if cc:
        built["Cc"] = ", ".join(_header_form(m, utf8) for m in cc)
    if reply_to:
        built["Reply-To"] = ", ".join(_header_form(m, utf8) for m in reply_to)
    built["Subject"] = message.subject
    for header, value in (("In-Reply-To", message.in_reply_to), ("References", message.references)):
        if value:
            built[header] = _message_ids(header, value)
    built["Date"] = format_datetime(datetime.now(UTC))
    try:
        message_domain = addresses.ascii_domain(domain or sender.address.rpartition("@")[2])
    except AddressError as exc:
        raise HeaderError(f"Message-ID: {exc}") from None
    built["Message-ID"] = make_msgid(domain=message_domain)
    built["MIME-Version"] = "1.0"
    text = message.text or html_to_text(message.html)
    if text:
        built.set_content(text)
        if message.html:
            built.add_alternative(message.html, subtype="html")
    else:
        built.set_content(message.html, subtype="html")
    for filename, content, content_type in attachments:
        maintype, _, subtype = content_type.partition("/")
        built.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
    raw = built.as_bytes()
    intended = {
        "from": [_header_address(sender, utf8)],
        "to": [_header_address(m, utf8) for m in to],
        "cc": [_header_address(m, utf8) for m in cc],
        "reply-to": [_header_address(m, utf8) for m in reply_to],
    }
    verify(built, raw, intended)
    return raw


_MSG_ID = re.compile(r"<[^<>\s@]+@[^<>\s@]+>")


def _message_ids(header: str, value: str) -> str:
    """``value`` as a list of ``<id@domain>`` (what In-Reply-To and References hold); HeaderError else."""
    check_header_value(header, value)
    ids = value.split()
    if not ids or len(value) > 8000 or not all(_MSG_ID.fullmatch(i) for i in ids):
        raise HeaderError(f"{header}: a list of <id@domain> message ids")
    return " ".join(ids)


def _header_address(mailbox: Mailbox, utf8: bool) -> str:
    return mailbox.address if utf8 else addresses.envelope(mailbox.address)


def _attachment(attachment: OutgoingAttachment) -> tuple[str, bytes, str]:
    """The checked filename (invisible characters dropped), the bytes and a well-formed content type."""
    check_header_value(f"attachment filename {attachment.filename[:80]!r}", attachment.filename)
    filename = clean_filename(attachment.filename) or "attachment"
    content_type = attachment.content_type.strip().lower()
    if not _CONTENT_TYPE.match(content_type):
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    if content_type.startswith(("message/", "multipart/")):
        # A message/rfc822 part may not be base64-encoded (RFC 2046), and the bytes of a received message are
        # not always 7-bit clean: an attached .eml goes as bytes; mail programs open it by its name.
        content_type = "application/octet-stream"
    return filename, attachment.content, content_type


def verify(built: EmailMessage, raw: bytes, intended: dict[str, list[str]]) -> None:
    """Parse ``raw`` and refuse (VerificationError) unless it holds the headers and parts of ``built``:
    the same header names in the same order and number in every part, the same decoded values and
    filename parameters, no control characters, and exactly the ``intended`` addresses per header."""
    lines = raw.replace(b"\r\n", b"")
    if any(c in lines for c in (b"\r", b"\n", b"\0")):
        raise VerificationError("refused: the built message holds a bare line break or NUL")
    if not getattr(built.policy, "utf8", False) and not raw.isascii():
        raise VerificationError("refused: the built message holds 8-bit header or body bytes")
    try:
        parsed = email.message_from_string(raw.decode("utf-8"), policy=_READ_POLICY)
    except (UnicodeDecodeError, ValueError, LookupError) as exc:
        raise VerificationError(f"refused: the built message cannot be read back ({type(exc).__name__})") from None
    wanted_parts, sent_parts = list(built.walk()), list(parsed.walk())
    if len(wanted_parts) != len(sent_parts):
        raise VerificationError(
            f"refused: the built message has {len(sent_parts)} MIME parts instead of {len(wanted_parts)}"
        )
    for index, (wanted, sent) in enumerate(zip(wanted_parts, sent_parts, strict=True)):
        where = "the message" if index == 0 else f"MIME part {index}"
        _compare_part(where, wanted, sent)
    for name, wanted_addresses in intended.items():
        header = parsed[name]
        sent_addresses = [a.addr_spec for a in header.addresses] if header is not None else []
        if sent_addresses != wanted_addresses:
            raise VerificationError(f"refused: the {name.title()} header came out with other addresses")


def _compare_part(where: str, wanted: Message, sent: Message) -> None:
    wanted_names = [k.lower() for k in wanted]
    sent_names = [k.lower() for k in sent]
    if wanted_names != sent_names:
        extra = sorted(set(sent_names) - set(wanted_names)) or sorted(set(wanted_names) ^ set(sent_names))
        raise VerificationError(
            f"refused: {where} came out with other headers than were built ({', '.join(extra) or 'count'})"
        )
    for key in dict.fromkeys(wanted_names):
        for wanted_value, sent_value in zip(wanted.get_all(key, []), sent.get_all(key, []), strict=True):
            if _control(str(sent_value)) or not _same_value(key, wanted_value, sent_value):
                raise VerificationError(f"refused: the {key} header of {where} came out different from what was built")
    if wanted.get_filename() != sent.get_filename():
        raise VerificationError(f"refused: the attachment filename of {where} came out different")


def _same_value(key: str, wanted: object, sent: object) -> bool:
    if key in _ADDRESS_HEADERS:
        return _mailboxes_of(wanted) == _mailboxes_of(sent)
    params_wanted, params_sent = getattr(wanted, "params", None), getattr(sent, "params", None)
    if params_wanted is not None or params_sent is not None:
        values = [str(v) for v in dict(params_sent or {}).values()]
        if any(_control(v) for v in values):
            return False
        return dict(params_wanted or {}) == dict(params_sent or {}) and _main_value(wanted) == _main_value(sent)
    return _text(str(wanted)) == _text(str(sent))


def _text(value: str) -> str:
    # Whitespace is not compared: folding moves it, and the email package's own reader puts a space
    # between adjacent encoded words in a phrase where RFC 2047 readers (rightly) join them.
    return "".join(value.split())


def _mailboxes_of(header: object) -> list[tuple[str, str]]:
    return [(_text(a.display_name), a.addr_spec) for a in getattr(header, "addresses", ())]


def _main_value(header: object) -> str:
    return str(getattr(header, "content_type", None) or getattr(header, "content_disposition", None) or "")


def python_refolds_encoded_line_breaks() -> bool:
    """True when this Python's email package turns an encoded CR/LF into a real header line
    (CVE-2024-6923, fixed in 3.11.10 and 3.12.5). Sending stays safe either way."""
    probe = EmailMessage(policy=email_policy.SMTP)
    probe["X-Probe"] = "=?utf-8?q?a=0D=0AX-Injected:_yes?="
    try:
        folded = probe.as_bytes()
    except Exception:  # noqa: BLE001 - a fixed email package refuses to write such a header
        return False
    return b"\nX-Injected:" in folded
