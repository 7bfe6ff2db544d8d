from __future__ import annotations

import pytest

from webapp.adapters.mail.endpoint import EndpointError, format_url, parse_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("imap://mail.example.com", ("imap", "none", "mail.example.com", 143, "")),
        ("imap+starttls://mail.example.com/INBOX", ("imap", "starttls", "mail.example.com", 143, "INBOX")),
        ("imaps://mail.example.com/INBOX", ("imap", "tls", "mail.example.com", 993, "INBOX")),
        (
            "imaps://mail.example.com:1993/Archiv%2F2024%20Q1",
            ("imap", "tls", "mail.example.com", 1993, "Archiv/2024 Q1"),
        ),
        ("pop3://h", ("pop3", "none", "h", 110, "")),
        ("pop3+starttls://h", ("pop3", "starttls", "h", 110, "")),
        ("pop3s://h", ("pop3", "tls", "h", 995, "")),
        ("IMAPS://H:1", ("imap", "tls", "h", 1, "")),
    ],
)
def test_incoming_urls_parse_with_default_ports(url: str, expected: tuple) -> None:
    assert parse_url(url, ("imap", "pop3")) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay", ("smtp", "none", "relay", 25, "")),
        ("smtp+starttls://relay", ("smtp", "starttls", "relay", 587, "")),
        ("smtps://relay", ("smtp", "tls", "relay", 465, "")),
        ("smtp://[::1]:2525", ("smtp", "none", "::1", 2525, "")),
    ],
)
def test_outgoing_urls_parse_with_default_ports(url: str, expected: tuple) -> None:
    assert parse_url(url, ("smtp",)) == expected


@pytest.mark.parametrize(
    ("url", "allowed", "reason"),
    [
        ("http://x", ("imap", "pop3"), "unsupported scheme"),
        ("smtp://x", ("imap", "pop3"), "unsupported scheme"),
        ("imaps://", ("imap",), "no host"),
        ("imaps://u:p@x/INBOX", ("imap",), "only scheme"),
        ("pop3s://x/INBOX", ("pop3",), "only IMAP URLs"),
        ("imaps://x/IN%0D%0ABOX", ("imap",), "line breaks"),
        ("imaps://x:99999", ("imap",), "invalid server URL"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: str, allowed: tuple, reason: str) -> None:
    with pytest.raises(EndpointError, match=reason):
        parse_url(url, allowed)


def test_format_is_the_inverse_of_parse() -> None:
    url = "imaps://mail.example.com:993/Archiv%2F2024%20Q1"
    assert format_url(*parse_url(url, ("imap",))) == url
