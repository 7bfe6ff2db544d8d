"""The setup wizard's suggestions: server settings found for an address (or taken from a shared mailbox's
primary account), each saying where it came from, reduced to the one incoming and one outgoing server an
account has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webapp.adapters.autoconfig.settings import Provider, ServerSetting
from webapp.adapters.mail.endpoint import DEFAULT_PORTS
from webapp.models import EmailAccount
from webapp.services.account import autoconfig

# Where a suggestion came from, as the wizard says it beside each field.
SOURCE_LABELS = {
    "preset": "built-in settings",
    "autoconfig": "the domain's configuration file",
    "mx": "the domain's mail server (MX)",
    "srv": "the domain's SRV records",
    "primary": "the primary account",
}


@dataclass(frozen=True)
class Suggestion:
    """One configuration to fill the wizard with: at most one incoming and one outgoing server."""

    source: str  # a key of SOURCE_LABELS
    origin: str  # the preset's domain, the file's URL, the MX host, the SRV names, the primary's name
    name: str
    incoming: ServerSetting | None
    outgoing: ServerSetting | None
    notes: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """How the choice reads: the provider's name and where it was found."""
        return f"{self.name} ({SOURCE_LABELS.get(self.source, self.source)})"

    @property
    def wants_oauth(self) -> bool:
        """Does the provider ask for OAuth 2.0 (which this version cannot do yet: docs/accounts.md)?"""
        return any(s is not None and s.auth == "oauth2" for s in (self.incoming, self.outgoing))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values: the wizard carries what was found from step to step."""
        return {
            "source": self.source,
            "origin": self.origin,
            "name": self.name,
            "incoming": self.incoming.as_dict() if self.incoming else None,
            "outgoing": self.outgoing.as_dict() if self.outgoing else None,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Suggestion:
        """The suggestion :meth:`as_dict` gave; ValueError/KeyError/TypeError when it is not one."""
        return cls(
            str(data["source"]),
            str(data["origin"]),
            str(data["name"]),
            _setting(data.get("incoming")),
            _setting(data.get("outgoing")),
            tuple(str(note) for note in data.get("notes", ())),
        )


def _setting(data: object) -> ServerSetting | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise TypeError("a server setting is an object")
    setting = ServerSetting(**data)
    if (setting.protocol, setting.security) not in DEFAULT_PORTS or not isinstance(setting.port, int):
        raise ValueError("not a server setting")
    return setting


def discovered(address: str) -> tuple[list[Suggestion], list[str]]:
    """What automatic configuration found for ``address`` (best first), and what it could not ask."""
    found = autoconfig.discover(address)
    suggestions = [of_provider(provider) for provider in found.providers]
    return [s for s in suggestions if s.incoming or s.outgoing], list(found.problems)


def of_provider(provider: Provider) -> Suggestion:
    """A provider's preferred servers: IMAP before POP3 (folders, flags, IDLE), in the source's order."""
    incoming = next((s for s in provider.incoming if s.protocol == "imap"), None) or next(iter(provider.incoming), None)
    outgoing = next(iter(provider.outgoing), None)
    return Suggestion(provider.source, provider.origin, provider.name, incoming, outgoing, provider.notes)


def of_primary(primary: EmailAccount) -> Suggestion:
    """A shared mailbox is usually on its primary account's servers."""
    incoming = (
        ServerSetting(
            primary.incoming_protocol, primary.incoming_host, primary.incoming_port, primary.incoming_security, ""
        )
        if primary.receives
        else None
    )
    outgoing = (
        ServerSetting("smtp", primary.outgoing_host, primary.outgoing_port, primary.outgoing_security, "")
        if primary.sends
        else None
    )
    return Suggestion("primary", primary.name, primary.name, incoming, outgoing)
