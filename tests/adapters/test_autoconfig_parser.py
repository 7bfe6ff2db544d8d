"""Thunderbird's autoconfig format: provider files as domains serve them, and hostile XML."""

from __future__ import annotations

from pathlib import Path

import pytest

from webapp.adapters.autoconfig import presets, thunderbird
from webapp.adapters.autoconfig.settings import ServerSetting
from webapp.adapters.autoconfig.thunderbird import AutoconfigError

DATA = Path(__file__).parents[1] / "data" / "autoconfig"


def _parse(name: str, address: str) -> thunderbird.Provider:
    return thunderbird.parse((DATA / name).read_bytes(), address, f"https://example/{name}")


def test_a_provider_file_gives_every_server_best_first() -> None:
    provider = _parse("posteo.de.xml", "anna@posteo.de")
    assert (provider.source, provider.name) == ("autoconfig", "Posteo")
    assert provider.incoming == (
        ServerSetting("imap", "posteo.de", 993, "tls", "anna@posteo.de"),
        ServerSetting("imap", "posteo.de", 143, "starttls", "anna@posteo.de"),
        ServerSetting("pop3", "posteo.de", 995, "tls", "anna@posteo.de"),
    )
    assert provider.outgoing == (
        ServerSetting("smtp", "posteo.de", 465, "tls", "anna@posteo.de"),
        ServerSetting("smtp", "posteo.de", 587, "starttls", "anna@posteo.de"),
    )


def test_local_part_logins_entities_and_servers_that_are_not_ours() -> None:
    provider = _parse("university.example.xml", "j.doe@uni.example")
    assert provider.name == "Universität Example & Partner"
    assert provider.incoming == (
        ServerSetting("imap", "imap.uni.example", 993, "tls", "j.doe"),  # host names in lower case
        ServerSetting("pop3", "pop.uni.example", 995, "tls", "j.doe"),
    )  # the exchange server is left out
    assert provider.outgoing == (ServerSetting("smtp", "smtp.uni.example", 587, "starttls", "j.doe"),)


def test_oauth_is_said_and_a_password_preferred_when_both_are_offered() -> None:
    provider = _parse("oauth.example.xml", "max@oauth.example")
    assert [(s.host, s.auth) for s in provider.incoming] == [
        ("imap.oauth.example", "password"),
        ("oauth.example.imap.example", "password"),  # %EMAILDOMAIN% in a host name is filled in too
    ]
    assert [(s.host, s.auth) for s in provider.outgoing] == [("smtp.oauth.example", "oauth2")]


HOSTILE = {
    "billion laughs": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
    b"<clientConfig><emailProvider><displayName>&b;</displayName></emailProvider></clientConfig>",
    "external entity": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
    b"<clientConfig><emailProvider><displayName>&e;</displayName></emailProvider></clientConfig>",
    "external DTD": b'<?xml version="1.0"?><!DOCTYPE clientConfig SYSTEM "http://127.0.0.1:1/x.dtd"><clientConfig/>',
    "too big": b"<clientConfig>" + b" " * (300 * 1024) + b"</clientConfig>",
    "deep": b"<clientConfig>" + b"<a>" * 50 + b"</a>" * 50 + b"</clientConfig>",
    "wide": b"<clientConfig>" + b"<a/>" * 6000 + b"</clientConfig>",
    "not XML": b"<html><body>Welcome to nginx!",
    "HTML page": b"<html><body>Welcome</body></html>",
    "no provider": b"<clientConfig version='1.1'></clientConfig>",
    "no usable server": b"<clientConfig><emailProvider><incomingServer type='imap'><hostname>a b</hostname>"
    b"<port>993</port><socketType>SSL</socketType></incomingServer><incomingServer type='imap'>"
    b"<hostname>imap.x</hostname><port>99999</port><socketType>SSL</socketType></incomingServer>"
    b"<outgoingServer type='smtp'><hostname>smtp.x</hostname><port>587</port><socketType>TLS1.0</socketType>"
    b"</outgoingServer></emailProvider></clientConfig>",
    "empty": b"",
    "UTF-7": b'<?xml version="1.0" encoding="UTF-7"?><clientConfig/>',
    "unknown encoding": b'<?xml version="1.0" encoding="x-no-such"?><clientConfig/>',
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_or_useless_documents_are_refused_with_a_reason(kind: str) -> None:
    with pytest.raises(AutoconfigError) as info:
        thunderbird.parse(HOSTILE[kind], "a@x.test", "https://x.test/")
    assert str(info.value)
    assert "passwd" not in str(info.value) and "root:" not in str(info.value)


def test_every_preset_is_complete_and_found_by_its_domains() -> None:
    for entry in presets._entries():
        for domain in entry["domains"]:
            found = presets.by_domain(f"someone@{domain}")
            assert found is not None and found.name == entry["name"], domain
            assert found.incoming and found.outgoing, domain
            assert all(s.security in ("tls", "starttls") for s in (*found.incoming, *found.outgoing)), domain
    names = {e["name"] for e in presets._entries()}
    wanted = ["Gmail", "Outlook.com", "Microsoft 365", "Yahoo", "iCloud", "Fastmail", "GMX", "WEB.DE", "Zoho"]
    wanted += ["Proton", "AOL", "Yandex", "Mail.ru", "t-online"]
    assert all(any(w.lower() in n.lower() for n in names) for w in wanted), names


def test_an_mx_host_names_its_provider() -> None:
    google = presets.by_mx("it@firm.example", "ASPMX.L.GOOGLE.COM.")
    assert google is not None and google.source == "mx" and google.origin == "aspmx.l.google.com"
    assert google.incoming[0] == ServerSetting("imap", "imap.gmail.com", 993, "tls", "it@firm.example")
    microsoft = presets.by_mx("it@firm.example", "firm-example.mail.protection.outlook.com")
    assert microsoft is not None and microsoft.name.startswith("Microsoft 365")
    newer = presets.by_mx("it@firm.example", "firm-example.j-v1.mx.microsoft")
    assert newer is not None and newer.name.startswith("Microsoft 365")
    zoho_eu = presets.by_mx("it@firm.example", "mx.zoho.eu")
    assert zoho_eu is not None and zoho_eu.incoming[0].host == "imappro.zoho.eu"
    assert presets.by_domain("someone@yahoo.co.jp") is None  # Yahoo! JAPAN is another service
    assert presets.by_mx("it@firm.example", "mail.firm.example") is None
    assert presets.by_mx("it@firm.example", "evilgoogle.com") is None  # a suffix, not a substring


def test_what_a_hostile_file_puts_in_a_setting_never_comes_out() -> None:
    """Host names must be DNS names, ports ASCII digits in range, logins without line breaks; the name is
    cleaned for showing; the address is not expanded twice; at most ten servers a direction."""
    servers = [
        ("imap.x.test:2525", "993", "%EMAILADDRESS%"),
        ("[::1]", "993", "%EMAILADDRESS%"),
        ("169.254.169.254", "993", "%EMAILADDRESS%"),
        ("\u0456map.\u0445.test", "993", "%EMAILADDRESS%"),  # Cyrillic look-alikes of imap.x.test
        ("imap.x.test", "٩٩٣", "%EMAILADDRESS%"),
        ("imap.x.test", "+993", "%EMAILADDRESS%"),
        ("imap.x.test", "0", "%EMAILADDRESS%"),
        ("imap.x.test", "993", "jo&#13;&#10;a1 LOGOUT"),
        ("imap.ok.test", "993", "%EMAILADDRESS%"),
    ] + [(f"imap{n}.many.test", "143", "%EMAILADDRESS%") for n in range(20)]
    body = "".join(
        f"<incomingServer type='imap'><hostname>{h}</hostname><port>{p}</port><socketType>SSL</socketType>"
        f"<username>{u}</username></incomingServer>"
        for h, p, u in servers
    )
    document = (
        "<clientConfig><emailProvider><displayName>Corp&#10;  imap\tevil.test:993&#x202E;</displayName>"
        f"{body}</emailProvider></clientConfig>"
    ).encode()
    provider = thunderbird.parse(document, "%EMAILDOMAIN%@x.test", "https://x.test/")
    assert provider.name == "Corp imap evil.test:993"
    assert provider.incoming[0] == ServerSetting("imap", "imap.ok.test", 993, "tls", "%EMAILDOMAIN%@x.test")
    assert len(provider.incoming) == 10
    assert {s.host for s in provider.incoming[1:]} <= {f"imap{n}.many.test" for n in range(20)}
