"""Discovery end to end against the test kit's DNS and HTTPS servers: each source alone, all together,
one that never answers, hostile answers, the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.dnsserver import DnsServer
from tests.servers.webfiles import WebFiles
from webapp import connector
from webapp.adapters.autoconfig.settings import ServerSetting
from webapp.services.account import autoconfig
from webapp.services.errors import Invalid

DATA = Path(__file__).parents[1] / "data" / "autoconfig"
CONFIG_PATH = "/mail/config-v1.1.xml"
WELL_KNOWN_PATH = "/.well-known/autoconfig/mail/config-v1.1.xml"


def _corp_file(imap_host: str = "imap.corp.test") -> bytes:
    return f"""<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="corp.test"><displayName>Corp Mail</displayName>
<incomingServer type="imap"><hostname>{imap_host}</hostname><port>993</port><socketType>SSL</socketType>
<username>%EMAILLOCALPART%</username><authentication>password-cleartext</authentication></incomingServer>
<outgoingServer type="smtp"><hostname>smtp.corp.test</hostname><port>587</port><socketType>STARTTLS</socketType>
<username>%EMAILADDRESS%</username><authentication>password-cleartext</authentication></outgoingServer>
</emailProvider></clientConfig>""".encode()


def _serve(dns: DnsServer, web: WebFiles, host: str, path: str, body: bytes, status: int = 200) -> None:
    dns.add(host, "A", "127.0.0.1")
    web.put(host, path, body, status)


def test_a_well_known_provider_comes_from_the_presets_without_the_network(discovery) -> None:
    _dns, web = discovery
    found = autoconfig.discover("Someone@GMAIL.com")
    assert [(p.source, p.origin) for p in found.providers] == [("preset", "gmail.com")]
    assert found.providers[0].incoming[0] == ServerSetting("imap", "imap.gmail.com", 993, "tls", "Someone@gmail.com")
    assert found.problems == ()
    assert web.requests == []  # gmail.com has no address in the kit's DNS: nothing fetched


def test_the_domains_autoconfig_host_is_read(discovery) -> None:
    dns, web = discovery
    _serve(dns, web, "autoconfig.corp.test", CONFIG_PATH, _corp_file())
    found = autoconfig.discover("jo@corp.test")
    assert [p.source for p in found.providers] == ["autoconfig"]
    provider = found.providers[0]
    assert provider.origin.startswith("https://autoconfig.corp.test:") and provider.name == "Corp Mail"
    assert provider.incoming == (ServerSetting("imap", "imap.corp.test", 993, "tls", "jo"),)
    assert provider.outgoing == (ServerSetting("smtp", "smtp.corp.test", 587, "starttls", "jo@corp.test"),)
    assert web.requests == [("autoconfig.corp.test", f"{CONFIG_PATH}?emailaddress=jo@corp.test")]
    assert found.problems == ()


def test_the_well_known_path_is_tried_when_there_is_no_autoconfig_host(discovery) -> None:
    dns, web = discovery
    _serve(dns, web, "wellknown.test", WELL_KNOWN_PATH, (DATA / "posteo.de.xml").read_bytes())
    found = autoconfig.discover("li@wellknown.test")
    assert [p.name for p in found.providers] == ["Posteo"]
    assert found.providers[0].incoming[0].username == "li@wellknown.test"
    assert found.problems == ()  # no autoconfig.wellknown.test: not a problem, just absent


def test_the_mx_providers_preset(discovery) -> None:
    dns, _web = discovery
    dns.add("corp.test", "MX", "10 corp-test.mail.protection.outlook.com.", "20 backup.corp.test.")
    found = autoconfig.discover("jo@corp.test")
    assert [(p.source, p.origin) for p in found.providers] == [("mx", "corp-test.mail.protection.outlook.com")]
    assert found.providers[0].outgoing[0] == ServerSetting(
        "smtp", "smtp.office365.com", 587, "starttls", "jo@corp.test", "oauth2"
    )


def test_srv_records(discovery) -> None:
    dns, _web = discovery
    dns.add("_imaps._tcp.corp.test", "SRV", "10 1 993 mail.corp.test.", "0 1 993 imap1.corp.test.")
    dns.add("_pop3._tcp.corp.test", "SRV", "0 0 0 .")  # RFC 2782: not offered
    dns.add("_submission._tcp.corp.test", "SRV", "0 1 587 mail.corp.test.")
    found = autoconfig.discover("jo@corp.test")
    assert [p.source for p in found.providers] == ["srv"]
    srv = found.providers[0]
    assert srv.incoming == (ServerSetting("imap", "imap1.corp.test", 993, "tls", "jo@corp.test"),)
    assert srv.outgoing == (ServerSetting("smtp", "mail.corp.test", 587, "starttls", "jo@corp.test"),)
    assert srv.origin == "_imaps._tcp.corp.test, _submission._tcp.corp.test"


def test_every_source_together_in_order_and_through_the_connector(discovery) -> None:
    dns, web = discovery
    _serve(dns, web, "autoconfig.mixed.test", CONFIG_PATH, _corp_file("imap.mixed.test"))
    dns.add("mixed.test", "MX", "1 aspmx.l.google.com.")
    dns.add("_imaps._tcp.mixed.test", "SRV", "0 1 993 imap.mixed.test.")
    found = connector.get_auto_config("it@mixed.test")
    assert [p.source for p in found] == ["autoconfig", "mx", "srv"]
    assert isinstance(found[0], connector.EmailProvider)


def test_a_source_that_never_answers_hides_nothing_else(discovery, app) -> None:
    dns, web = discovery
    app.config["AUTOCONFIG_TIMEOUT_SECONDS"] = 1
    _serve(dns, web, "autoconfig.slow.test", CONFIG_PATH, _corp_file("imap.slow.test"))
    dns.add("slow.test", "MX", "1 aspmx.l.google.com.")
    dns.silent.add("_imaps._tcp.slow.test")  # the SRV lookups get no answer at all
    found = autoconfig.discover("jo@slow.test")
    assert [p.source for p in found.providers] == ["autoconfig", "mx"]
    assert len(found.problems) == 1 and found.problems[0].startswith("srv: ")
    assert autoconfig.discover("jo@slow.test").problems  # an answer with a problem is not cached
    assert dns.asked[("_imaps._tcp.slow.test", "SRV")] >= 2


def test_hostile_and_broken_answers_are_problems_not_failures(discovery) -> None:
    dns, web = discovery
    laughs = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><clientConfig>&a;</clientConfig>'
    _serve(dns, web, "autoconfig.hostile.test", CONFIG_PATH, laughs)
    _serve(dns, web, "hostile.test", WELL_KNOWN_PATH, b"oops", status=500)
    dns.add("_imaps._tcp.hostile.test", "SRV", "0 1 993 imap.hostile.test.")
    found = autoconfig.discover("jo@hostile.test")
    assert [p.source for p in found.providers] == ["srv"]
    assert any("DOCTYPE" in p for p in found.problems), found.problems
    assert any("answered 500" in p for p in found.problems), found.problems


def test_an_autoconfig_host_at_a_metadata_address_is_never_asked(discovery) -> None:
    dns, web = discovery
    dns.add("autoconfig.hostile.test", "A", "169.254.169.254")
    found = autoconfig.discover("jo@hostile.test")
    assert found.providers == ()
    assert any("169.254.169.254" in p for p in found.problems), found.problems
    assert web.requests == []


def test_an_untrusted_certificate_is_a_problem(discovery, monkeypatch: pytest.MonkeyPatch, pki) -> None:
    dns, web = discovery
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_ca_pem))
    _serve(dns, web, "autoconfig.corp.test", CONFIG_PATH, _corp_file())
    found = autoconfig.discover("jo@corp.test")
    assert found.providers == ()
    assert any("not trusted" in p for p in found.problems), found.problems


def test_a_complete_answer_is_kept_for_a_day(discovery) -> None:
    dns, web = discovery
    _serve(dns, web, "autoconfig.corp.test", CONFIG_PATH, _corp_file())
    first = autoconfig.discover("jo@corp.test")
    asked = sum(dns.asked.values())
    web.reset()  # had it been asked again, it would find nothing now
    again = autoconfig.discover("jo@CORP.test.")  # the same domain
    assert again.providers == first.providers
    assert (sum(dns.asked.values()), len(web.requests)) == (asked, 0)


@pytest.mark.parametrize(
    "address", ["", "no-at-sign", "@corp.test", "jo@", "jo@localhost", "jo@corp..test", "jo@-x.test", "a b@corp.test"]
)
def test_what_is_not_an_address_is_refused(discovery, address: str) -> None:
    with pytest.raises(Invalid, match="not an email address"):
        autoconfig.discover(address)
