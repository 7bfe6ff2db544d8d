"""Built-in presets for well-known providers (``providers.json``, kept offline), found by the address's
domain or by the host of the domain's MX record (Google Workspace, Microsoft 365, … on a custom domain)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from webapp.adapters.autoconfig.settings import Provider, ServerSetting, fill_username, preference

PRESETS_FILE = Path(__file__).with_name("providers.json")


@cache
def _entries() -> tuple[dict[str, Any], ...]:
    return tuple(json.loads(PRESETS_FILE.read_text(encoding="utf-8"))["providers"])


def by_domain(address: str) -> Provider | None:
    """The preset of the address's domain, if it is a well-known provider's."""
    domain = address.rpartition("@")[2].lower()
    entry = next((e for e in _entries() if domain in e["domains"]), None)
    return _provider(entry, address, "preset", domain) if entry else None


def by_mx(address: str, mx_host: str) -> Provider | None:
    """The preset of the provider that runs ``mx_host`` (the domain's MX), if it is a well-known one."""
    host = mx_host.lower().rstrip(".")
    for entry in _entries():
        if any(host == suffix or host.endswith("." + suffix) for suffix in entry["mx"]):
            return _provider(entry, address, "mx", host)
    return None


def _provider(entry: dict[str, Any], address: str, source: str, origin: str) -> Provider:
    def settings(items: list[dict[str, Any]]) -> tuple[ServerSetting, ...]:
        found = [
            ServerSetting(
                item["protocol"],
                item["host"],
                int(item["port"]),
                item["security"],
                fill_username(item.get("username", "%EMAILADDRESS%"), address),
                item.get("auth", "password"),
            )
            for item in items
        ]
        return tuple(sorted(found, key=preference))

    return Provider(
        source, origin, entry["name"], settings(entry["incoming"]), settings(entry["outgoing"]), tuple(entry["notes"])
    )
