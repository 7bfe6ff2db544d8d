"""Email addresses as people type them: lists, display names, validation and the SMTP envelope form.

``"Doe, John" <j@example.com>; bob@localhost`` is two mailboxes: lists split on ``;`` and ``,`` only
outside quotes, angle brackets and comments. An address is a dot-atom local part (UTF-8 allowed: it
then needs SMTPUTF8) at a domain of one or more labels (``localhost`` is fine); an internationalised
domain is checked and converted with IDNA (UTS #46) for the envelope and ASCII headers. Pure
functions: no I/O.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import idna

MAX_ADDRESS = 254  # RFC 5321: a path is at most 256 octets, angle brackets included
MAX_LOCAL = 64
MAX_DOMAIN = 253
# RFC 5322 atext, plus any non-ASCII character that is not a control, format, space or unassigned
# character (RFC 6531's UTF8-non-ascii, minus what only ever serves to deceive).
_ATEXT = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
# Characters that make a display name need quotes (RFC 5322 specials, and the list separator ;).
_SPECIALS = frozenset('()<>[]:;@\\,."')


class AddressError(ValueError):
    """An address or list that cannot be used; the message says why in plain words."""


@dataclass(frozen=True)
class Mailbox:
    """One recipient or sender: an address with an optional display name."""

    address: str
    name: str = ""

    def __str__(self) -> str:
        return format_mailbox(self)


def check_address(address: str) -> str:
    """Return ``address`` if it is a usable email address, else raise AddressError saying why."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise AddressError("an address is local-part@domain")
    _check_local(local)
    envelope_domain = ascii_domain(domain)
    if len(local.encode("utf-8", "surrogatepass")) + 1 + len(envelope_domain) > MAX_ADDRESS:
        raise AddressError(f"longer than {MAX_ADDRESS} characters")
    return address


def _check_local(local: str) -> None:
    if "=?" in local:
        # atext, but the email package would decode it as an encoded word in the header
        raise AddressError("'=?' (the start of an encoded word) is not allowed before @")
    if len(local.encode("utf-8", "surrogatepass")) > MAX_LOCAL:
        raise AddressError(f"the part before @ is longer than {MAX_LOCAL} characters")
    for atom in local.split("."):
        if not atom:
            raise AddressError("a dot at the start or end of the part before @, or two dots in a row")
        for char in atom:
            if char not in _ATEXT and not (ord(char) > 127 and _visible(char)):
                raise AddressError(f"{char!r} is not allowed before @ (spaces, quotes, brackets, ',', ';', ':')")


def _visible(char: str) -> bool:
    return unicodedata.category(char)[0] not in "CZ"


def ascii_domain(domain: str) -> str:
    """The ASCII (IDNA A-label) form of ``domain``; AddressError if it is not a domain name."""
    if domain.isascii():
        result = domain
    else:
        try:
            result = idna.encode(domain, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            raise AddressError(f"{domain!r} is not a valid internationalised domain name ({exc})") from None
    if len(result) > MAX_DOMAIN:
        raise AddressError(f"the domain is longer than {MAX_DOMAIN} characters")
    for label in result.split("."):
        if not _LABEL.match(label):
            raise AddressError(
                f"{domain!r} is not a domain name (letters, digits and '-' between dots, no dot at either end)"
            )
        if label[:4].lower() == "xn--":
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError, ValueError):
                raise AddressError(f"{label!r} is not a valid internationalised domain label") from None
    return result


def envelope(address: str) -> str:
    """The form for MAIL FROM/RCPT TO: the domain as IDNA A-labels, the local part as it is."""
    local, _, domain = check_address(address).rpartition("@")
    return f"{local}@{ascii_domain(domain)}"


def needs_smtputf8(address: str) -> bool:
    """True when the local part is not ASCII: only a server offering SMTPUTF8 can take it."""
    return not address.rpartition("@")[0].isascii()


def split(text: str) -> list[str]:
    """Split a list on ``;`` and ``,`` outside quotes, angle brackets and comments; drop empty items."""
    items: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    angle = comment = 0
    for char in text:
        current.append(char)
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or comment):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            comment += 1
        elif char == ")" and comment:
            comment -= 1
        elif comment:
            continue
        elif char == "<":
            angle += 1
        elif char == ">" and angle:
            angle -= 1
        elif char in ",;" and not angle:
            current.pop()
            items.append("".join(current))
            current = []
    if quoted or comment or angle:
        raise AddressError(f"{text.strip()!r}: a quote, '(' or '<' is not closed")
    items.append("".join(current))
    return [item.strip() for item in items if item.strip()]


def parse_mailbox(item: str) -> Mailbox:
    """Parse ``address``, ``<address>`` or ``Name <address>`` (the name may be quoted)."""
    text = item.replace("\t", " ").strip()
    try:
        if not text.endswith(">"):
            if any(c in text for c in ' <>"()'):
                raise AddressError("a name needs the address in angle brackets: Name <address>")
            return Mailbox(check_address(text))
        start = _angle_start(text)
        address = text[start + 1 : -1].strip()
        return Mailbox(check_address(address), _phrase(text[:start]))
    except AddressError as exc:
        raise AddressError(f"{item.strip()!r} is not a valid email address ({exc})") from None


def _angle_start(text: str) -> int:
    """The index of the ``<`` that opens the final ``<address>``, outside quotes and comments."""
    quoted = escaped = False
    comment = 0
    start = -1
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and (quoted or comment):
            escaped = True
        elif quoted:
            quoted = char != '"'
        elif char == '"':
            quoted = True
        elif char == "(":
            comment += 1
        elif char == ")" and comment:
            comment -= 1
        elif comment:
            continue
        elif char == "<":
            if start >= 0:
                raise AddressError("more than one '<'")
            start = index
    if start < 0 or ">" in text[start + 1 : -1]:
        raise AddressError("'<' and '>' do not match")
    return start


def _phrase(text: str) -> str:
    """The display name: quoted parts unquoted, comments dropped, runs of spaces outside quotes made one."""
    out: list[tuple[str, bool]] = []  # (character, was quoted)
    quoted = escaped = False
    comment = 0
    for char in text:
        if escaped:
            escaped = False
            if not comment:
                out.append((char, True))
        elif char == "\\" and (quoted or comment):
            escaped = True
        elif quoted:
            quoted = char != '"'
            if quoted:
                out.append((char, True))
        elif char == '"':
            quoted = True
        elif char == "(":
            comment += 1
        elif comment:
            if char == ")":
                comment -= 1
        elif char in "<>)[]:;@,\\":
            raise AddressError(f"{char!r} in a name needs quotes around the name")
        elif char != " " or (out and out[-1] != (" ", False)):
            out.append((char, False))
    while out and out[-1] == (" ", False):
        out.pop()
    if out and out[0] == (" ", False):
        out.pop(0)
    name = "".join(char for char, _ in out)
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cs"):
            raise AddressError("control characters are not allowed in a name")
    return name


def parse_list(text: str) -> tuple[Mailbox, ...]:
    """Parse a list of mailboxes separated by ``;`` or ``,``; the first bad item is named."""
    return tuple(parse_mailbox(item) for item in split(text))


def format_mailbox(mailbox: Mailbox) -> str:
    """``Name <address>`` with the name quoted when it needs it (as typed: not RFC 2047-encoded)."""
    name = mailbox.name
    if not name:
        return mailbox.address
    if _needs_quotes(name):
        name = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{name} <{mailbox.address}>"


def _needs_quotes(name: str) -> bool:
    if name != name.strip() or "  " in name:
        return True
    return any(c in _SPECIALS or (c not in _ATEXT and c != " " and c.isascii()) for c in name)


def format_list(mailboxes: tuple[Mailbox, ...] | list[Mailbox]) -> str:
    """The mailboxes as one list that :func:`parse_list` reads back the same."""
    return ", ".join(format_mailbox(m) for m in mailboxes)
