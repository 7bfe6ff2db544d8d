"""Thunderbird's autoconfig format (``config-v1.1.xml``, as the ISPDB and many domains serve it), parsed
with a hardened parser: no DOCTYPE (so no entity declarations, no external references, no "billion
laughs"), a size limit, and an element limit. Only what an account needs is read: the servers."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat

from webapp.adapters.autoconfig.settings import Provider, ServerSetting, fill_username, preference
from webapp.adapters.errors import PermanentError

MAX_BYTES = 256 * 1024  # the largest ISPDB file is under 20 KB
MAX_ELEMENTS = 5_000
MAX_DEPTH = 20

SOCKET_TYPES = {"ssl": "tls", "tls": "tls", "starttls": "starttls", "plain": "none"}
AUTH_KINDS = {
    "password-cleartext": "password",
    "plain": "password",
    "password-encrypted": "password",
    "secure": "password",
    "oauth2": "oauth2",
    "none": "none",
    "client-ip-address": "none",
}


class AutoconfigError(PermanentError):
    """A document that is not a usable autoconfig file (the reason says why)."""


@dataclass
class _Node:
    name: str
    attributes: dict[str, str]
    children: list[_Node] = field(default_factory=list)
    text: str = ""

    def all(self, name: str) -> list[_Node]:
        return [child for child in self.children if child.name == name]

    def value(self, name: str) -> str:
        found = self.all(name)
        return found[0].text.strip() if found else ""


def parse(data: bytes, address: str, origin: str) -> Provider:
    """The provider the document describes for ``address`` (its servers, best first)."""
    root = _tree(data)
    if root.name != "clientConfig":
        raise AutoconfigError(f"not an autoconfig file (its root is <{root.name[:40]}>, not <clientConfig>)")
    providers = root.all("emailProvider")
    if not providers:
        raise AutoconfigError("the autoconfig file names no <emailProvider>")
    provider = providers[0]
    incoming = [_server(node, address) for node in provider.all("incomingServer")]
    outgoing = [_server(node, address) for node in provider.all("outgoingServer")]
    usable_in = sorted((s for s in incoming if s is not None), key=preference)
    usable_out = sorted((s for s in outgoing if s is not None), key=preference)
    if not usable_in and not usable_out:
        raise AutoconfigError("the autoconfig file names no IMAP, POP3 or SMTP server we can use")
    name = provider.value("displayName") or provider.attributes.get("id", "") or origin
    return Provider("autoconfig", origin, name[:200], tuple(usable_in), tuple(usable_out))


def _server(node: _Node, address: str) -> ServerSetting | None:
    protocol = node.attributes.get("type", "").lower()
    if protocol not in ("imap", "pop3", "smtp"):
        return None  # exchange, ews, jmap, …: not ours
    host = fill_username(node.value("hostname"), address)  # (the placeholders may stand in a host name too)
    security = SOCKET_TYPES.get(node.value("socketType").lower())
    try:
        port = int(node.value("port"))
    except ValueError:
        return None
    if not _usable_host(host) or security is None or not 0 < port < 65536:
        return None
    kinds = [AUTH_KINDS.get(a.text.strip().lower()) for a in node.all("authentication")]
    auth = next((k for k in kinds if k == "password"), next((k for k in kinds if k), "password"))
    username = fill_username(node.value("username") or "%EMAILADDRESS%", address)
    return ServerSetting(protocol, host.lower(), port, security, username[:320], auth)


def _usable_host(host: str) -> bool:
    """A host name or address as a mail server setting takes it (no placeholders, spaces or paths)."""
    if not host or len(host) > 253 or "%" in host:
        return False
    return all(c.isalnum() or c in ".-_:[]" for c in host)


def _tree(data: bytes) -> _Node:
    if len(data) > MAX_BYTES:
        raise AutoconfigError(f"the autoconfig file is over {MAX_BYTES // 1024} KB")
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    stack: list[_Node] = []
    roots: list[_Node] = []
    count = 0

    def refuse(*_args: object) -> int:
        raise AutoconfigError("the autoconfig file has a DOCTYPE or entity declarations: refused")

    def start(name: str, attributes: dict[str, str]) -> None:
        nonlocal count
        count += 1
        if count > MAX_ELEMENTS or len(stack) >= MAX_DEPTH:
            raise AutoconfigError("the autoconfig file has too many or too deeply nested elements")
        node = _Node(name, dict(attributes))
        (stack[-1].children if stack else roots).append(node)
        stack.append(node)

    def end(_name: str) -> None:
        stack.pop()

    def text(value: str) -> None:
        if stack:
            stack[-1].text += value

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.ExternalEntityRefHandler = refuse
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise AutoconfigError(f"the autoconfig file is not well-formed XML ({exc})") from None
    if not roots:
        raise AutoconfigError("the autoconfig file is empty")
    return roots[0]
