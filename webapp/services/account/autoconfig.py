"""Automatic configuration: every configuration found for an address, each with its source, in this
order — a built-in preset for the domain, the domain's own autoconfig file, the preset of its MX
record's provider, and its RFC 6186 SRV records (``get_auto_config``, Mendix's GetAutoConfig).

The network sources are asked at once, in threads, within ``AUTOCONFIG_TIMEOUT_SECONDS`` in all; one that
fails or is late never hides the others (its problem is reported beside what was found). A complete
answer is kept in Redis for ``AUTOCONFIG_CACHE_SECONDS`` (a day). docs/autoconfig.md says more.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from flask import current_app

from webapp.adapters.autoconfig import presets, thunderbird, web
from webapp.adapters.autoconfig.dnslookup import Lookup, name_server
from webapp.adapters.autoconfig.settings import MAX_SERVERS, Provider, ServerSetting, usable_host
from webapp.adapters.coordination import UNAVAILABLE
from webapp.adapters.errors import AdapterError
from webapp.adapters.mime import addresses
from webapp.services.errors import Invalid
from webapp.services.platform.redisconn import coordination

# RFC 6186 (and RFC 8314's submissions): the SRV name, and what it means for us.
SRV_SERVICES = (
    ("_imaps._tcp", "imap", "tls"),
    ("_imap._tcp", "imap", "starttls"),
    ("_pop3s._tcp", "pop3", "tls"),
    ("_pop3._tcp", "pop3", "starttls"),
    ("_submissions._tcp", "smtp", "tls"),
    ("_submission._tcp", "smtp", "starttls"),
)
AUTOCONFIG_URLS = (
    "https://autoconfig.{domain}{port}/mail/config-v1.1.xml?emailaddress={address}",
    "https://{domain}{port}/.well-known/autoconfig/mail/config-v1.1.xml",
)


@dataclass(frozen=True)
class Discovery:
    """What was found (``providers``, best first) and what could not be asked (``problems``, in words)."""

    address: str
    providers: tuple[Provider, ...]
    problems: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """The discovery as JSON-ready values."""
        return {
            "address": self.address,
            "providers": [p.as_dict() for p in self.providers],
            "problems": list(self.problems),
        }


def discover(address: str) -> Discovery:
    """Every configuration found for ``address`` (see the module docstring); Invalid if it is no address."""
    address, domain = _split(address)
    key = f"autoconfig:{address}"  # the domain in lower case; the local part as given (logins may keep it)
    cached = _cache_get(key)
    if cached:
        return _from_json(cached)
    config = current_app.config
    budget = float(config["AUTOCONFIG_TIMEOUT_SECONDS"])
    deadline = time.monotonic() + budget
    lookup = Lookup(_name_servers(config["AUTOCONFIG_DNS_SERVERS"]), deadline)
    allow_private = bool(config["AUTOCONFIG_ALLOW_PRIVATE"])
    port = int(config["AUTOCONFIG_HTTPS_PORT"])
    found: list[Provider] = []
    problems: list[str] = []
    preset = presets.by_domain(address)
    if preset is not None:
        found.append(preset)
    asked = {
        "autoconfig": _Source(_domain_file, address, domain, lookup, port, allow_private),
        "mx": _Source(_mx, address, domain, lookup),
        "srv": _Source(_srv, address, domain, lookup),
    }
    for source, running in asked.items():  # in the order of the result
        outcome = running.wait(deadline)
        if outcome is None:
            problems.append(f"{source}: no answer within {budget:g} seconds")
        elif isinstance(outcome, BaseException):
            current_app.logger.error("autoconfig: the %s lookup failed", source, exc_info=outcome)
            problems.append(f"{source}: unexpected error ({type(outcome).__name__}); see the log")
        else:
            provider, said = outcome
            problems.extend(f"{source}: {problem}" for problem in said)
            if provider is not None:
                found.append(provider)
    result = Discovery(address, _distinct(found), tuple(problems))
    if not problems and result.providers:  # "nothing found" is asked again: it may be this network
        _cache_put(key, json.dumps(result.as_dict()), int(config["AUTOCONFIG_CACHE_SECONDS"]))
    return result


class _Source:
    """One source, asked in a daemon thread of its own: a late one is left behind (its lookups end at the
    deadline) and never keeps the process from exiting."""

    def __init__(self, ask: Callable[..., tuple[Provider | None, list[str]]], *args: Any) -> None:
        self._done = threading.Event()
        self._outcome: tuple[Provider | None, list[str]] | BaseException | None = None

        def run() -> None:
            try:
                self._outcome = ask(*args)
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who logs it
                self._outcome = exc
            finally:
                self._done.set()

        threading.Thread(target=run, daemon=True, name="autoconfig").start()

    def wait(self, deadline: float) -> tuple[Provider | None, list[str]] | BaseException | None:
        """The source's outcome, or None when it is not done by ``deadline``."""
        if not self._done.wait(max(0.0, deadline - time.monotonic())):
            return None
        return self._outcome


def _name_servers(setting: str | Sequence[str] | None) -> list[tuple[str, int]]:
    """AUTOCONFIG_DNS_SERVERS as (address, port) pairs ([]: the system's resolvers)."""
    servers = [s for s in setting.split(",") if s.strip()] if isinstance(setting, str) else list(setting or ())
    try:
        return [name_server(server) for server in servers]
    except ValueError as exc:
        raise Invalid(f"AUTOCONFIG_DNS_SERVERS: {exc}") from None


def _cache_get(key: str) -> str | None:
    try:
        return coordination().get(key)
    except UNAVAILABLE:  # the cache is a convenience: without Redis, discovery asks again
        return None


def _cache_put(key: str, value: str, seconds: int) -> None:
    try:
        coordination().put(key, value, seconds)
    except UNAVAILABLE:
        # (info, not a warning: the command line's one line on failure stays one line)
        current_app.logger.info("autoconfig: Redis does not answer; the answer is not cached")


def get_auto_config(address: str) -> list[Provider]:
    """Mendix's GetAutoConfig: the configurations found (``discover(address).providers``)."""
    return list(discover(address).providers)


def _split(address: str) -> tuple[str, str]:
    """The address with its domain as IDNA 2008 A-labels in lower case, and that domain; the same rules as
    for recipients, and a domain name of two labels or more that is not an IP address."""
    address = address.strip()
    local, _, domain = address.rpartition("@")
    domain = domain.removesuffix(".")  # the root's dot (example.com.) names the same domain
    try:
        addresses.check_address(f"{local}@{domain}")
        ascii_domain = addresses.ascii_domain(domain).lower()
    except addresses.AddressError as exc:
        raise Invalid(
            f"{address[:80]!r} is not an email address with a domain, like name@example.com ({exc})"
        ) from None
    if not usable_host(ascii_domain):
        why = (
            "a one-word domain such as localhost publishes no mail settings"
            if "." not in ascii_domain
            else "an IP address publishes no mail settings"
        )
        raise Invalid(
            f"{address[:80]!r} has no domain name to look up ({why}): enter the servers by hand, "
            "or use an address like name@example.com"
        )
    return f"{local}@{ascii_domain}", ascii_domain


def _domain_file(
    address: str, domain: str, lookup: Lookup, port: int, allow_private: bool
) -> tuple[Provider | None, list[str]]:
    """The domain's own autoconfig file: the autoconfig host first, then the domain's well-known path."""
    problems: list[str] = []
    shown_port = "" if port == 443 else f":{port}"
    for pattern in AUTOCONFIG_URLS:
        url = pattern.format(domain=domain, port=shown_port, address=quote(address, safe="@"))
        try:
            document = web.get_document(url, lookup, allow_private=allow_private)
            return thunderbird.parse(document, address, url), []
        except AdapterError as exc:
            if not _absent(exc):
                problems.append(str(exc))
            if exc.kind == "timeout":
                break  # the deadline is spent: the next URL would only say so again
    return None, problems


def _absent(exc: AdapterError) -> bool:
    """Not a problem, just not there: no such host (NXDOMAIN, no address), nothing listening, 404/410."""
    return exc.kind in ("absent", "refused")


def _mx(address: str, domain: str, lookup: Lookup) -> tuple[Provider | None, list[str]]:
    """The preset of the provider behind the domain's MX (Google Workspace, Microsoft 365, …)."""
    try:
        hosts = lookup.mx(domain)
    except AdapterError as exc:
        return None, [str(exc)]
    for host in hosts:
        provider = presets.by_mx(address, host)
        if provider is not None:
            return provider, []
    return None, []


def _srv(address: str, domain: str, lookup: Lookup) -> tuple[Provider | None, list[str]]:
    """RFC 6186: the servers the domain names in SRV records (login: the address)."""
    incoming: list[ServerSetting] = []
    outgoing: list[ServerSetting] = []
    problems: list[str] = []
    names: list[str] = []
    for service, protocol, security in SRV_SERVICES:
        name = f"{service}.{domain}"
        try:
            answers = lookup.srv(name)
        except AdapterError as exc:
            problems.append(str(exc))
            continue
        usable = [a for a in answers if usable_host(a.target) and 0 < a.port < 65536]
        if len(usable) < len(answers):
            problems.append(f"{name}: a record that names no usable host or port was left out")
        if usable:
            names.append(name)
            best = usable[0]
            setting = ServerSetting(protocol, best.target, best.port, security, address)
            (outgoing if protocol == "smtp" else incoming).append(setting)
    if not incoming and not outgoing:
        return None, problems
    return Provider("srv", ", ".join(names), domain, tuple(incoming[:MAX_SERVERS]), tuple(outgoing)), problems


def _distinct(found: list[Provider]) -> tuple[Provider, ...]:
    """Leave out a later source that found exactly what an earlier one did (gmail.com's MX: its preset)."""
    seen: set[tuple[tuple[ServerSetting, ...], tuple[ServerSetting, ...]]] = set()
    kept = []
    for provider in found:
        servers = (provider.incoming, provider.outgoing)
        if servers not in seen:
            seen.add(servers)
            kept.append(provider)
    return tuple(kept)


def _from_json(text: str) -> Discovery:
    data = json.loads(text)
    providers = tuple(Provider.from_dict(p) for p in data["providers"])
    return Discovery(data["address"], providers, tuple(data["problems"]))
