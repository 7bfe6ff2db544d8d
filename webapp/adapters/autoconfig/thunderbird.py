"""Thunderbird's autoconfig format (``config-v1.1.xml``, as the ISPDB and many domains serve it), parsed
with a hardened parser: no DOCTYPE (so no entity declarations, no external references, no "billion
laughs"), a size limit, and an element limit. Only what an account needs is read: the servers."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.parsers import expat

from webapp.adapters.autoconfig.settings import (
    MAX_SERVERS,
    Provider,
    ServerSetting,
    clean_text,
    fill_username,
    preference,
    usable_host,
    usable_port,
    usable_username,
)
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
    usable_in = sorted((s for s in incoming if s is not None), key=preference)[:MAX_SERVERS]
    usable_out = sorted((s for s in outgoing if s is not None), key=preference)[:MAX_SERVERS]
    if not usable_in and not usable_out:
        raise AutoconfigError("the autoconfig file names no IMAP, POP3 or SMTP server we can use")
    name = clean_text(provider.value("displayName") or provider.attributes.get("id", ""), 200) or origin
    return Provider("autoconfig", origin, name, tuple(usable_in), tuple(usable_out))


def _server(node: _Node, address: str) -> ServerSetting | None:
    protocol = node.attributes.get("type", "").lower()
    if protocol not in ("imap", "pop3", "smtp"):
        return None  # exchange, ews, jmap, …: not ours
    host = fill_username(node.value("hostname"), address)  # (the placeholders may stand in a host name too)
    security = SOCKET_TYPES.get(node.value("socketType").lower())
    port = usable_port(node.value("port"))
    username = fill_username(node.value("username") or "%EMAILADDRESS%", address)
    if not usable_host(host) or security is None or port is None or not usable_username(username):
        return None  # a host that is not a host name, an unknown socket type, a login with a line break, …
    kinds = [AUTH_KINDS.get(a.text.strip().lower()) for a in node.all("authentication")]
    auth = next((k for k in kinds if k == "password"), next((k for k in kinds if k), "password"))
    return ServerSetting(protocol, host.lower().rstrip("."), port, security, username, auth)


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
    except (ValueError, LookupError):  # an encoding expat cannot read (UTF-7, Shift_JIS, an unknown name)
        raise AutoconfigError("the autoconfig file is in an encoding that is not supported (use UTF-8)") from None
    if not roots:
        raise AutoconfigError("the autoconfig file is empty")
    return roots[0]
