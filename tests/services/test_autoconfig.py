"""Discovery end to end against the test kit's DNS and HTTPS servers: each source alone, all together,
one that never answers, hostile answers, the cache."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
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
    app.config["AUTOCONFIG_TIMEOUT_SECONDS"] = 3  # the silent SRV lookup waits it out; the rest take far less
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


def test_nothing_found_is_asked_again_next_time(discovery) -> None:
    """Found by the new-user review: offline, every name is NXDOMAIN, and "nothing" was kept for a day."""
    dns, _web = discovery
    assert autoconfig.discover("jo@corp.test").providers == ()
    dns.add("_imaps._tcp.corp.test", "SRV", "0 1 993 imap.corp.test.")
    assert [p.source for p in autoconfig.discover("jo@corp.test").providers] == ["srv"]


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
    "address",
    [
        "",
        "no-at-sign",
        "@corp.test",
        "jo@",
        "jo@localhost",
        "jo@corp..test",
        "jo@-x.test",
        "a b@corp.test",
        "jo@127.0.0.1",
        "jo@0x7f.1",
        "jo@[127.0.0.1]",
        "jo\u202e@corp.test",
    ],
)
def test_what_is_not_an_address_is_refused(discovery, address: str) -> None:
    with pytest.raises(Invalid, match="not an email address|has no domain name to look up"):
        autoconfig.discover(address)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("jo@localhost", "a one-word domain such as localhost publishes no mail settings"),
        ("jo@127.0.0.1", "an IP address publishes no mail settings"),
        ("jo@0x7f.1", "an IP address publishes no mail settings"),
    ],
)
def test_an_address_without_a_domain_name_says_why(discovery, address: str, why: str) -> None:
    with pytest.raises(Invalid, match=f"has no domain name to look up \\({why}\\): enter the servers by hand"):
        autoconfig.discover(address)


def test_an_internationalised_domain_is_its_own_idna_2008_name(discovery) -> None:
    """faß.de is xn--fa-hia.de, another domain than fass.de (IDNA 2003 would have mapped it there)."""
    dns, web = discovery
    _serve(dns, web, "autoconfig.xn--fa-hia.de", CONFIG_PATH, _corp_file())
    found = autoconfig.discover("jo@faß.de")
    assert found.address == "jo@xn--fa-hia.de"
    assert dns.asked[("autoconfig.xn--fa-hia.de", "A")] == 1 and dns.asked[("autoconfig.fass.de", "A")] == 0


def test_without_allow_private_a_loopback_autoconfig_host_is_not_asked(discovery, app) -> None:
    dns, web = discovery
    app.config["AUTOCONFIG_ALLOW_PRIVATE"] = False  # the default
    _serve(dns, web, "autoconfig.corp.test", CONFIG_PATH, _corp_file())
    found = autoconfig.discover("jo@corp.test")
    assert found.providers == () and web.requests == []
    assert any("127.0.0.1" in p and "not asked" in p for p in found.problems), found.problems


def test_a_failing_name_server_is_a_problem_not_an_absence(discovery) -> None:
    dns, _web = discovery
    dns.failing.add("autoconfig.corp.test")
    dns.add("_imaps._tcp.corp.test", "SRV", "0 1 993 imap.corp.test.")
    found = autoconfig.discover("jo@corp.test")
    assert [p.source for p in found.providers] == ["srv"]
    assert any(p.startswith("autoconfig: DNS:") for p in found.problems), found.problems
    autoconfig.discover("jo@corp.test")
    assert dns.asked[("autoconfig.corp.test", "A")] == 2  # not cached: asked again


def test_srv_records_naming_no_usable_host_or_port_are_left_out(discovery) -> None:
    dns, _web = discovery
    dns.add("_imaps._tcp.corp.test", "SRV", "0 1 0 imap.corp.test.", r"0 1 993 imap\013\010x.corp.test.")
    dns.add("_submission._tcp.corp.test", "SRV", "0 1 587 169.254.169.254.", "1 1 587 smtp.corp.test.")
    found = autoconfig.discover("jo@corp.test")
    (srv,) = found.providers
    assert srv.incoming == () and [s.host for s in srv.outgoing] == ["smtp.corp.test"]
    assert sum("left out" in p for p in found.problems) == 2


def test_a_server_that_sends_its_file_a_byte_at_a_time_is_cut_off_at_the_deadline(discovery, app, pki) -> None:
    """Found by the attack review: the socket timeout bounded each read, not the download, so a slow
    server kept a thread (and the command) alive for hours."""
    dns, _web = discovery
    app.config["AUTOCONFIG_TIMEOUT_SECONDS"] = 1
    with _Trickle(pki) as trickle:
        app.config["AUTOCONFIG_HTTPS_PORT"] = trickle.port
        dns.add("autoconfig.slow.test", "A", "127.0.0.1")
        found = autoconfig.discover("jo@slow.test")
        # One problem, whichever comes first: the source's own timeout, or discovery's at the deadline.
        assert found.providers == () and len(found.problems) == 1, found.problems  # (the next URL is not tried)
        assert found.problems[0].startswith("autoconfig: "), found.problems
        assert "in time" in found.problems[0] or "within" in found.problems[0], found.problems
        left = [t for t in threading.enumerate() if t.name == "autoconfig"]
        for thread in left:
            thread.join(timeout=3)  # the source's reads end at the deadline, not when the file is done
        assert not any(t.is_alive() for t in left)
        assert trickle.sent < 50


class _Trickle:
    """An HTTPS server that announces a big file and sends a byte every 0.1 s."""

    def __init__(self, pki) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(pki.cert_pem, pki.key_pem)
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> _Trickle:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.listener.close()
        self.thread.join(timeout=10)

    def _serve(self) -> None:
        self.listener.settimeout(10)
        try:
            raw, _ = self.listener.accept()
        except OSError:
            return
        with contextlib.suppress(OSError), self.context.wrap_socket(raw, server_side=True) as connection:
            connection.recv(4096)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 262144\r\n\r\n")
            while not self.stop.wait(0.1) and self.sent < 100:
                connection.sendall(b"<")
                self.sent += 1
