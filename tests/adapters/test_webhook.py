"""The webhook POST against real HTTP(S) servers on loopback: no redirects, http(s) only, checked targets.

Addresses that must never be contacted are refused before any name lookup or connection: the autouse
network guard (tests/servers/netguard.py) would fail the test on any packet for them.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import ssl
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.servers.pki import Pki
from tests.servers.webhookreceiver import Receiver
from webapp.adapters import webhook
from webapp.adapters.errors import PermanentError, TransientError

SECRET = "s3cret-s3cret-s3cret"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[Receiver]:
    """The server a redirect points to: it must never see a connection."""
    server = Receiver()
    yield server
    server.close()


def send(url: str, **kwargs: Any) -> webhook.Answer:
    return webhook.post(url, SECRET, {"event": "test", "n": 1}, "1:test:abc", timeout=5, **kwargs)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """A DNS of our own for names under .test: ``resolver({"hooks.test": ["127.0.0.1", "127.0.0.2"]})``.

    Each lookup of a name takes the next answer (the last one repeats): a rebinding DNS. Returns the
    list of names looked up.
    """
    real = socket.getaddrinfo  # the network guard's: loopback only
    asked: list[str] = []
    table: dict[str, list[str]] = {}

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in table:
            return real(host, port, *args, **kwargs)
        answers = table[name]
        address = answers[min(asked.count(name), len(answers) - 1)]
        asked.append(name)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, int(port), 0, 0) if family == socket.AF_INET6 else (address, int(port))
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)

    def configure(answers: dict[str, list[str]]) -> list[str]:
        table.update(answers)
        return asked

    return configure


# --- what gets through ---------------------------------------------------------------------------------


def test_a_signed_post_reaches_the_receiver(receiver: Receiver) -> None:
    answer = send(receiver.url("/in?x=1"))
    assert answer == webhook.Answer(200, "OK")
    (request,) = receiver.requests
    assert (request.method, request.path) == ("POST", "/in?x=1")
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["x-emailconnector-delivery"] == "1:test:abc"
    assert webhook.verify(SECRET, request.body, request.headers["x-emailconnector-signature"])
    assert json.loads(request.body) == {"event": "test", "n": 1}


def test_answers_are_classified(receiver: Receiver) -> None:
    for status, error in [(204, None), (500, TransientError), (503, TransientError), (408, TransientError),
                          (429, TransientError), (404, PermanentError), (410, PermanentError)]:  # fmt: skip
        receiver.answer(status)
        if error is None:
            assert send(receiver.url()).status == status
        else:
            with pytest.raises(error, match=f"answered {status}"):
                send(receiver.url())


# --- redirects are never followed ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "scheme"),
    [(302, "ftp"), (302, "http"), (301, "http"), (303, "http"), (307, "http"), (308, "http"), (302, "https")],
)
def test_a_redirect_fails_the_delivery_and_its_target_is_never_contacted(
    receiver: Receiver, other: Receiver, status: int, scheme: str
) -> None:
    receiver.answer(status, Location=other.url("/landing?token=REDIRECT-SECRET", scheme=scheme))
    with pytest.raises(PermanentError) as caught:
        send(receiver.url("/hook/PATH-SECRET?key=QUERY-SECRET"))
    message = str(caught.value)
    assert f"answered {status}" in message and "redirects are not followed" in message
    assert f"a redirect to {scheme}://127.0.0.1:{other.port}" in message  # the target, as scheme and host
    assert "SECRET" not in message
    assert len(receiver.requests) == 1 and receiver.requests[0].method == "POST"
    assert other.connections == 0  # never contacted: no GET, no FTP login, nothing


def test_a_relative_redirect_is_named_too(receiver: Receiver) -> None:
    receiver.answer(302, Location="/elsewhere?token=x")
    with pytest.raises(PermanentError, match=rf"a redirect to http://127\.0\.0\.1:{receiver.port}: redirects"):
        send(receiver.url())
    assert len(receiver.requests) == 1


# --- http and https only ---------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["ftp", "file", "gopher", "ws", "javascript", ""])
def test_only_http_and_https_are_sent(other: Receiver, scheme: str) -> None:
    url = f"{scheme}://127.0.0.1:{other.port}/x" if scheme else f"127.0.0.1:{other.port}/x"
    with pytest.raises(PermanentError):
        send(url)
    with pytest.raises(PermanentError):
        webhook.check_url(url)
    assert other.connections == 0


def test_urls_with_credentials_spaces_or_bad_ports_are_refused() -> None:
    for url in ["http://user:PW-SECRET@127.0.0.1:9/", "http://127.0.0.1:99999/SECRET", "http://127.0.0.1:9/a SECRET",
                "http:///SECRET", "http://127.0.0.1:9/\r\nX: SECRET", "https://"]:  # fmt: skip
        with pytest.raises(PermanentError) as caught:
            webhook.check_url(url)
        assert "SECRET" not in str(caught.value)


def test_upper_case_scheme_and_unicode_path_are_sent(receiver: Receiver) -> None:
    assert send(f"HTTP://127.0.0.1:{receiver.port}/h\u00e9?q=\u00fc").status == 200
    assert receiver.requests[0].path == "/h%C3%A9?q=%C3%BC"


# --- where a POST may go ---------------------------------------------------------------------------------

NEVER = [
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack metadata
    "169.254.0.1",
    "[fe80::1]",
    "[fe80::a9fe:a9fe%25eth0]",
    "100.100.100.200",  # Alibaba
    "[fd00:ec2::254]",  # AWS over IPv6
    "168.63.129.16",  # Azure WireServer
    "192.0.0.192",  # Oracle classic
    "0.0.0.0",
    "[::]",
    "[::ffff:169.254.169.254]",  # IPv4-mapped
    "[64:ff9b::a9fe:a9fe]",  # NAT64
    "[2002:a9fe:a9fe::1]",  # 6to4
    "2852039166",  # 169.254.169.254 as one number
    "0xA9.0xFE.0xA9.0xFE",  # … in hex
    "169.254.43518",  # … in the a.b.c form
    "224.0.0.1",
    "255.255.255.255",
]


@pytest.mark.parametrize("host", NEVER)
def test_link_local_and_metadata_addresses_are_always_refused_before_any_packet(host: str) -> None:
    for allow_private in (True, False):
        with pytest.raises(PermanentError, match="never allowed") as caught:
            send(f"http://{host}/latest/meta-data/?token=SECRET", allow_private=allow_private)
        assert "SECRET" not in str(caught.value)
        with pytest.raises(PermanentError, match="never allowed"):
            webhook.check_url(f"https://{host}/x", allow_private)


def test_names_resolving_to_metadata_addresses_are_refused(resolver: Callable[..., list[str]]) -> None:
    asked = resolver({"metadata.test": ["169.254.169.254"], "mixed.test": ["127.0.0.1", "fe80::1"]})
    with pytest.raises(PermanentError, match=r"resolves to 169\.254\.169\.254 .* never allowed"):
        send("http://metadata.test/latest/meta-data/")
    webhook.check_url("http://metadata.test/")  # a name is only judged by what it resolves to
    assert asked == ["metadata.test"]


def test_private_targets_are_allowed_by_default_and_refused_when_not(
    receiver: Receiver, resolver: Callable[..., list[str]]
) -> None:
    resolver({"intranet.test": ["127.0.0.1"], "lan.test": ["10.1.2.3"], "v6.test": ["::1"]})
    assert send(receiver.url()).status == 200
    assert send(receiver.url(host="localhost")).status == 200
    assert send(receiver.url(host="intranet.test")).status == 200
    assert receiver.connections == 3

    for url in [receiver.url(), receiver.url(host="localhost"), receiver.url(host="[::1]"),
                receiver.url(host="127.0.0.2"), receiver.url(host="intranet.test"), receiver.url(host="lan.test"),
                receiver.url(host="v6.test"), receiver.url(host="[::ffff:127.0.0.1]"), "http://10.0.0.1/",
                "http://192.168.1.10/", "http://172.16.0.1/", "http://100.64.0.1/", "http://[fd12::1]/"]:  # fmt: skip
        with pytest.raises(PermanentError, match="private or loopback|loopback targets are refused"):
            send(url, allow_private=False)
    assert receiver.connections == 3  # refused before connecting


def test_public_addresses_pass_the_check() -> None:
    for host in ["93.184.215.14", "[2606:2800:21f:cb07:6820:80da:af6b:8b2c]", "8.8.8.8", "hooks.example.com"]:
        assert webhook.check_url(f"https://{host}/in", allow_private=False).scheme == "https"
    assert webhook.address_refusal(ipaddress.ip_address("1.1.1.1"), allow_private=False) is None


def test_the_name_is_resolved_once_and_the_checked_address_is_the_one_connected(
    receiver: Receiver, resolver: Callable[..., list[str]]
) -> None:
    """A rebinding DNS answers 127.0.0.1 first, then 127.0.0.2: only the checked first answer is used."""
    rebound = Receiver(host="127.0.0.2", port=receiver.port)
    try:
        asked = resolver({"rebind.test": ["127.0.0.1", "127.0.0.2"]})
        assert send(receiver.url("/in", host="rebind.test")).status == 200
        assert asked == ["rebind.test"]
        assert receiver.connections == 1 and rebound.connections == 0
        assert receiver.requests[0].headers["host"] == f"rebind.test:{receiver.port}"
    finally:
        rebound.close()


# --- https: the name stays the name ------------------------------------------------------------------------


@pytest.fixture
def tls_receiver(pki: Pki) -> Iterator[Receiver]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki.cert_pem, pki.key_pem)
    server = Receiver(tls=context)
    yield server
    server.close()


def test_https_sends_the_host_name_as_sni_and_checks_the_certificate_against_it(
    tls_receiver: Receiver, pki: Pki, resolver: Callable[..., list[str]]
) -> None:
    trusted = ssl.create_default_context(cafile=str(pki.ca_pem))
    assert send(tls_receiver.url("/in", scheme="https", host="localhost"), tls=trusted).status == 200
    assert tls_receiver.server_names == ["localhost"]
    assert tls_receiver.requests[0].headers["host"] == f"localhost:{tls_receiver.port}"

    # The certificate is valid for localhost and 127.0.0.1, and this name resolves to 127.0.0.1: a check
    # against the connected address would pass; the check against the URL's name must not.
    resolver({"hooks.test": ["127.0.0.1"]})
    with pytest.raises(TransientError, match=r"TLS: the certificate of https://hooks\.test:\d+ is not trusted"):
        send(tls_receiver.url("/in", scheme="https", host="hooks.test"), tls=trusted)
    assert tls_receiver.server_names[-1] == "hooks.test"
    assert len(tls_receiver.requests) == 1

    untrusted = ssl.create_default_context(cafile=str(pki.other_ca_pem))
    with pytest.raises(TransientError, match="not trusted"):
        send(tls_receiver.url("/in", scheme="https", host="localhost"), tls=untrusted)
    assert len(tls_receiver.requests) == 1


# --- error texts show scheme and host only ------------------------------------------------------------------


def test_every_failure_names_the_url_by_scheme_and_host_only(receiver: Receiver, tls_receiver: Receiver) -> None:
    secret_path = "/in/PATH-SECRET?token=QUERY-SECRET"
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)  # accepts, never answers: a timeout
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("answered 500", lambda: receiver.answer(500)),
        ("answered 404", lambda: receiver.answer(404)),
        ("redirects are not followed", lambda: receiver.answer(302, Location=f"http://x.test{secret_path}")),
    ]
    messages = []
    for expected, prepare in cases:
        prepare()
        with pytest.raises((PermanentError, TransientError), match=expected) as caught:
            send(receiver.url(secret_path))
        messages.append(str(caught.value))
    for url, kwargs in [
        (f"http://127.0.0.1:{closed_port}{secret_path}", {}),
        (f"http://127.0.0.1:{silent.getsockname()[1]}{secret_path}", {"timeout": 0.3}),
        (tls_receiver.url(secret_path, scheme="https"), {}),  # system CAs do not know the test CA
        (receiver.url(secret_path, scheme="https"), {}),  # TLS to a plain HTTP server
        (receiver.url(secret_path), {"allow_private": False}),
        (f"ftp://127.0.0.1:9{secret_path}", {}),
        (f"http://user:PW-SECRET@127.0.0.1:9{secret_path}", {}),
        (f"http://169.254.169.254{secret_path}", {}),
    ]:
        with pytest.raises((PermanentError, TransientError)) as caught:
            webhook.post(url, SECRET, {}, "id", **{"timeout": 5, **kwargs})
        messages.append(str(caught.value))
    silent.close()
    for message in messages:
        assert "SECRET" not in message and "/in" not in message, message
        assert "127.0.0.1" in message or "169.254.169.254" in message, message


def test_redact() -> None:
    assert webhook.redact("https://Hooks.Example.com/p/secret?token=x#f") == "https://hooks.example.com"
    assert webhook.redact("http://user:pw@127.0.0.1:8080/x") == "http://127.0.0.1:8080"
    assert webhook.redact("http://[::1]:9/x") == "http://[::1]:9"
    assert webhook.redact("not a url") == "(an invalid URL)"
    assert webhook.redact("http://h:99999/") == "(an invalid URL)"
    text = (
        "POST to https://a.test/s?k=1 failed, then 'http://b.test:81/x' too; see http://c.test:82: or (http://d.test/)."
    )
    assert webhook.redact_text(text) == (
        "POST to https://a.test failed, then 'http://b.test:81' too; see http://c.test:82: or (http://d.test)."
    )
