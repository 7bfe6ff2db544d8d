"""Building outgoing messages: address lists, header injection refused raw and encoded."""

from __future__ import annotations

import email
from email.policy import default

import pytest

from webapp.adapters.mime import HeaderError, OutgoingAttachment, OutgoingMessage, build, parse_addresses


def test_addresses_are_split_on_semicolons_and_validated() -> None:
    assert parse_addresses("To", "a@example.com; B <b@example.org> ;; c@x.io") == (
        "a@example.com",
        "b@example.org",
        "c@x.io",
    )
    with pytest.raises(HeaderError, match="'not-an-address' is not a valid"):
        parse_addresses("CC", "a@example.com; not-an-address")


@pytest.mark.parametrize(
    "value",
    [
        "Hello\r\nBcc: victim@example.com",
        "Hello\nX: y",
        "Hello\0",
        "=?utf-8?q?Hello=0D=0ABcc:_victim@example.com?=",
        "=?utf-8?b?SGVsbG8NCkJjYzogdmljdGltQGV4YW1wbGUuY29t?=",
    ],
)
def test_line_breaks_in_headers_are_refused_raw_and_encoded(value: str) -> None:
    message = OutgoingMessage(sender="me@example.com", to=("you@example.com",), subject=value, text="hi")
    with pytest.raises(HeaderError, match="Subject"):
        build(message)
    with pytest.raises(HeaderError):
        parse_addresses("To", f"you@example.com; {value}")


def test_build_keeps_bcc_out_of_the_headers_and_round_trips() -> None:
    message = OutgoingMessage(
        sender="me@example.com",
        sender_name="Jürgen Größ",
        to=("you@example.com",),
        cc=("cc@example.com",),
        bcc=("hidden@example.com",),
        subject="Grüße — 東京",
        text="Schöne Grüße",
        html="<p>Schöne <b>Grüße</b></p>",
        attachments=(OutgoingAttachment("Bericht ä.pdf", b"%PDF-1.4 data"),),
    )
    raw = build(message)
    assert b"\r\n" in raw and b"hidden@example.com" not in raw
    assert message.recipients == ["you@example.com", "cc@example.com", "hidden@example.com"]
    parsed = email.message_from_bytes(raw, policy=default)
    assert parsed["Subject"] == "Grüße — 東京"
    assert parsed["From"].addresses[0].display_name == "Jürgen Größ"
    assert parsed.get_body(("plain",)).get_content().strip() == "Schöne Grüße"
    assert "<b>Grüße</b>" in parsed.get_body(("html",)).get_content()
    (attachment,) = parsed.iter_attachments()
    assert attachment.get_filename() == "Bericht ä.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == b"%PDF-1.4 data"


@pytest.mark.parametrize(
    ("over", "reason"),
    [({"to": ()}, "To"), ({"subject": " "}, "Subject"), ({"text": "", "html": ""}, "body")],
)
def test_mandatory_fields(over: dict, reason: str) -> None:
    values = {"sender": "me@example.com", "to": ("you@example.com",), "subject": "s", "text": "t"}
    with pytest.raises(HeaderError, match=reason):
        build(OutgoingMessage(**{**values, **over}))
