"""Building outgoing MIME messages safely: address lists, header checks, bodies and attachments.

Header values are refused when they hold CR, LF or NUL, both as given and after RFC 2047 decoding
(Python 3.11.7 still re-folds an encoded word with CR/LF into a real header line: CVE-2024-6923).
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid

from webapp.adapters.errors import PermanentError
from webapp.adapters.linebreaks import has_line_break


class HeaderError(PermanentError):
    """A header value or address that must not be sent; the message names it."""


@dataclass(frozen=True)
class OutgoingAttachment:
    filename: str
    content: bytes = field(repr=False)
    content_type: str = ""


@dataclass(frozen=True)
class OutgoingMessage:
    sender: str
    to: tuple[str, ...]
    subject: str
    text: str = ""
    html: str = ""
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    sender_name: str = ""
    attachments: tuple[OutgoingAttachment, ...] = ()

    @property
    def recipients(self) -> list[str]:
        """Every envelope recipient, in order, without repeats (BCC included, never as a header)."""
        return list(dict.fromkeys([*self.to, *self.cc, *self.bcc]))


def check_header_value(name: str, value: str) -> str:
    """Refuse CR, LF and NUL in ``value``, raw and after RFC 2047 decoding."""
    if has_line_break(value):
        raise HeaderError(f"{name}: line breaks and NUL are not allowed")
    try:
        decoded = str(make_header(decode_header(value)))
    except (UnicodeDecodeError, LookupError, ValueError):
        decoded = value
    if has_line_break(decoded):
        raise HeaderError(f"{name}: an encoded line break or NUL is not allowed")
    return value


def parse_addresses(field_name: str, value: str) -> tuple[str, ...]:
    """Split ``a@x; b@y`` (``;`` or ``,``) into validated addresses; a bad one is named in the error."""
    check_header_value(field_name, value)
    result: list[str] = []
    for item in value.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        ((_name, address),) = getaddresses([item]) or [("", "")]
        if not _valid_address(address):
            raise HeaderError(f"{field_name}: {item!r} is not a valid email address")
        result.append(address)
    return tuple(result)


def _valid_address(address: str) -> bool:
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "." not in domain.strip("."):
        return False
    if any(c.isspace() or c in '<>()[],;:"\\' for c in local + domain):
        return False
    try:
        Address(addr_spec=address)
    except (ValueError, IndexError):
        return False
    return True


def build(message: OutgoingMessage, *, domain: str | None = None) -> bytes:
    """Return the message as bytes with CRLF line endings, ready for SMTP (BCC is not a header)."""
    if not message.to:
        raise HeaderError("To: at least one recipient is required")
    if not message.subject.strip():
        raise HeaderError("Subject: required")
    if not message.text and not message.html:
        raise HeaderError("a text or HTML body is required")
    check_header_value("Subject", message.subject)
    check_header_value("From", message.sender_name)
    if has_line_break(message.sender, *message.to, *message.cc, *message.bcc):
        raise HeaderError("addresses: line breaks and NUL are not allowed")
    email = EmailMessage(policy=SMTP)
    email["From"] = Address(message.sender_name, addr_spec=message.sender) if message.sender_name else message.sender
    email["To"] = ", ".join(message.to)
    if message.cc:
        email["Cc"] = ", ".join(message.cc)
    email["Subject"] = message.subject
    email["Date"] = format_datetime(datetime.now(UTC))
    email["Message-ID"] = make_msgid(domain=domain or message.sender.rpartition("@")[2])
    email["MIME-Version"] = "1.0"
    if message.text:
        email.set_content(message.text)
        if message.html:
            email.add_alternative(message.html, subtype="html")
    else:
        email.set_content(message.html, subtype="html")
    for attachment in message.attachments:
        check_header_value("attachment filename", attachment.filename)
        content_type = attachment.content_type or (
            mimetypes.guess_type(attachment.filename)[0] or "application/octet-stream"
        )
        maintype, _, subtype = content_type.partition("/")
        email.add_attachment(
            attachment.content, maintype=maintype, subtype=subtype or "octet-stream", filename=attachment.filename
        )
    return email.as_bytes()
