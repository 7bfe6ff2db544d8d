"""Building outgoing messages: address lists, header injection refused raw and encoded, and the built
bytes checked against what was intended."""

from __future__ import annotations

import email
import sys
from email.message import EmailMessage
from email.policy import SMTP, default

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.headerinjection import INJECTIONS
from webapp.adapters.mime import (
    HeaderError,
    OutgoingAttachment,
    OutgoingMessage,
    VerificationError,
    build,
    check_header_value,
    parse_addresses,
    python_refolds_encoded_line_breaks,
    verify,
)
from webapp.adapters.mime.addresses import Mailbox

REASON = r"line break|unknown charset|control character"


def _message(**over: object) -> OutgoingMessage:
    values: dict[str, object] = {"sender": "me@example.com", "to": ("you@example.com",), "subject": "Hi", "text": "x"}
    values.update(over)
    return OutgoingMessage(**values)  # type: ignore[arg-type]


def _slots(value: str) -> dict[str, tuple[OutgoingMessage, str]]:
    """The same hostile value in every header a user controls, with the label the refusal must name."""
    return {
        "subject": (_message(subject=value), "Subject"),
        "filename": (_message(attachments=(OutgoingAttachment(value, b"x"),)), "attachment filename"),
        "From name": (_message(sender_name=value), "From: the name of me@example.com"),
        "To name": (_message(to=(Mailbox("bob@example.com", value),)), "To: the name of bob@example.com"),
        "To as typed": (_message(to=(f'"{value}" <bob@example.com>',)), "To"),
        "CC name": (_message(cc=(Mailbox("carol@example.com", value),)), "CC: the name of carol@example.com"),
        "CC as typed": (_message(cc=(f"{value} <carol@example.com>",)), "CC"),
    }


SLOTS = ["subject", "filename", "From name", "To name", "To as typed", "CC name", "CC as typed"]


@pytest.mark.parametrize("slot", SLOTS)
@pytest.mark.parametrize("variant", list(INJECTIONS))
def test_every_injection_variant_is_refused_in_every_header(variant: str, slot: str) -> None:
    message, label = _slots(INJECTIONS[variant])[slot]
    with pytest.raises(HeaderError) as info:
        build(message)
    assert str(info.value).startswith(label), str(info.value)
    assert any(word in str(info.value) for word in REASON.split("|")) or "not valid" in str(info.value)


@pytest.mark.parametrize("variant", list(INJECTIONS))
def test_every_injection_variant_is_refused_in_address_lists(variant: str) -> None:
    for typed in (f"you@example.com; {INJECTIONS[variant]} <b@example.com>", f'"{INJECTIONS[variant]}" <b@x.test>'):
        with pytest.raises(HeaderError, match="^To"):
            parse_addresses("To", typed)


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?q?Hello_W=C3=B6rld?=",
        "=?utf-8*en?q?Hello?=",
        "=?ISO-8859-1?Q?Gr=FC=DFe?= aus =?utf-8?b?S8O2bG4=?=",
        "What is 1+1=? Two ?= ok",
        "Grüße — 東京 ✉ \t tab",
    ],
)
def test_clean_values_and_clean_encoded_words_pass(value: str) -> None:
    assert check_header_value("Subject", value) == value
    build(_message(subject=value))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("=?utf-8?q?=FF?=", "not valid utf-8"),
        ("=?utf-8?x?abc?=", "encoding must be Q or B"),
        ("=?unknown-8bit?q?abc?=", "unknown charset"),
        ("=?base64?q?abc?=", "unknown charset"),
        ("=?utf-8?b?Q?=", "broken base64"),
    ],
)
def test_words_that_cannot_be_decoded_cleanly_are_refused(value: str, reason: str) -> None:
    with pytest.raises(HeaderError, match=reason):
        check_header_value("Subject", value)


def test_a_huge_value_full_of_word_starts_is_checked_in_one_pass() -> None:
    # Each "=?" starts a candidate word: a check that rescans to the end for each would take hours here.
    check_header_value("Subject", "=?ab" * 250_000)
    with pytest.raises(HeaderError, match="encoded line break"):
        check_header_value("Subject", "=?ab" * 250_000 + INJECTIONS["LF only"])


def test_addresses_are_split_on_semicolons_and_commas_outside_quotes() -> None:
    assert parse_addresses("To", 'a@example.com; B <b@example.org> ;; c@x.io, "Doe, John" <j@x.io>') == (
        Mailbox("a@example.com"),
        Mailbox("b@example.org", "B"),
        Mailbox("c@x.io"),
        Mailbox("j@x.io", "Doe, John"),
    )
    with pytest.raises(HeaderError, match="CC: 'not-an-address' is not a valid"):
        parse_addresses("CC", "a@example.com; not-an-address")


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
    assert raw.isascii()  # 7-bit: quoted-printable or base64 bodies, encoded words in headers
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


def test_display_names_are_kept_and_encoded_when_not_ascii() -> None:
    raw = build(
        _message(
            to=("Bob <bob@x.test>", '"Doe, John" <j@example.com>', "dev@localhost"),
            cc=(Mailbox("c@x.test", "Jürgen Größ"),),
            bcc=("Hidden <h@x.test>",),
        )
    )
    headers = raw.split(b"\r\n\r\n")[0].decode()
    assert 'To: Bob <bob@x.test>, "Doe, John" <j@example.com>, dev@localhost\r\n' in headers
    assert "Cc: =?utf-8?" in headers and "Jürgen" not in headers
    assert "h@x.test" not in headers and "Hidden" not in headers
    parsed = email.message_from_bytes(raw, policy=default)
    assert [(a.display_name, a.addr_spec) for a in parsed["Cc"].addresses] == [("Jürgen Größ", "c@x.test")]


def test_a_typed_item_may_hold_a_list_and_empty_ones_are_refused() -> None:
    message = _message(to=('a@x.test; "Doe, John" <j@x.test>',), bcc=("b@x.test, c@x.test",))
    assert message.recipients == ["a@x.test", "j@x.test", "b@x.test", "c@x.test"]
    assert b'To: a@x.test, "Doe, John" <j@x.test>\r\n' in build(message)
    with pytest.raises(HeaderError, match="To: at least one recipient"):
        build(_message(to=(" ; ",)))


def test_idn_domains_go_out_as_a_labels_and_utf8_local_parts_as_utf8_headers() -> None:
    raw = build(_message(to=("Bob <x@exämple.test>",)))
    assert b"To: Bob <x@xn--exmple-cua.test>\r\n" in raw and raw.isascii()
    message = _message(to=("jü@exämple.test",), cc=("c@bücher.de",))
    utf8 = build(message)
    assert "To: jü@exämple.test\r\n".encode() in utf8
    assert "Cc: c@bücher.de\r\n".encode() in utf8
    assert message.recipients == ["jü@exämple.test", "c@bücher.de"]


def test_attachment_names_lose_invisible_characters_and_bad_content_types() -> None:
    raw = build(
        _message(
            attachments=(
                OutgoingAttachment("invoice\u202efdp.exe", b"x"),
                OutgoingAttachment("\u200bnotes\u2066.txt", b"y", "text/plain\r\nX-Injected: yes"),
                OutgoingAttachment("\u202e", b"z", "image/png"),
            )
        )
    )
    parsed = email.message_from_bytes(raw, policy=default)
    parts = list(parsed.iter_attachments())
    assert [p.get_filename() for p in parts] == ["invoicefdp.exe", "notes.txt", "attachment"]
    assert [p.get_content_type() for p in parts] == ["application/x-msdos-program", "text/plain", "image/png"]
    assert b"X-Injected" not in raw


def test_an_html_only_message_gets_a_plain_text_alternative() -> None:
    html = (
        "<html><head><style>p{color:red}</style></head><body><h1>Hi &amp; hello</h1>"
        "<p>See <a href='https://x.test/a?b=1&amp;c=2'>the report</a>.</p><script>alert(1)</script></body></html>"
    )
    parsed = email.message_from_bytes(build(_message(text="", html=html)), policy=default)
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert plain == "Hi & hello\n\nSee the report (https://x.test/a?b=1&c=2).\n"
    assert parsed.get_body(("html",)).get_content().strip() == html
    only_images = email.message_from_bytes(build(_message(text="", html="<img src='cid:x'>")), policy=default)
    assert only_images.get_content_type() == "text/html"


@pytest.mark.parametrize(
    ("over", "reason"),
    [({"to": ()}, "To"), ({"subject": " "}, "Subject"), ({"text": "", "html": ""}, "body")],
)
def test_mandatory_fields(over: dict, reason: str) -> None:
    values = {"sender": "me@example.com", "to": ("you@example.com",), "subject": "s", "text": "t"}
    with pytest.raises(HeaderError, match=reason):
        build(OutgoingMessage(**{**values, **over}))


def _built() -> tuple[EmailMessage, bytes]:
    message = EmailMessage(policy=SMTP.clone(cte_type="7bit"))
    message["From"] = "me@example.com"
    message["To"] = "Bob <bob@example.com>"
    message["Subject"] = "Hello"
    message.set_content("x")
    message.add_attachment(b"x", maintype="application", subtype="pdf", filename="a.pdf")
    return message, message.as_bytes()


INTENDED = {"from": ["me@example.com"], "to": ["bob@example.com"], "cc": []}


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        (lambda raw: raw.replace(b"Subject: Hello\r\n", b"Subject: Hello\r\nX-Injected: yes\r\n"), "other headers"),
        (lambda raw: raw.replace(b"Subject: Hello\r\n", b""), "other headers"),
        (lambda raw: raw.replace(b"Subject: Hello\r\n", b"Subject: Hello\nBcc: x@evil.test\r\n"), "bare line"),
        (lambda raw: raw.replace(b"Subject: Hello", b"Subject: Hel\x00lo"), "NUL"),
        (lambda raw: raw.replace(b"Subject: Hello", b"Subject: Goodbye"), "subject header"),
        (lambda raw: raw.replace(b"bob@example.com", b"eve@evil.test"), "to header"),
        (lambda raw: raw.replace(b"To: Bob <bob@example.com>", b"To: Bob <bob@example.com>, eve@evil.test"), "to"),
        (lambda raw: raw.replace(b'filename="a.pdf"', b'filename="a.pdf.exe"'), "content-disposition"),
        (lambda raw: raw.replace(b"Content-Disposition: attachment;", b"X-Other: attachment;"), "other headers"),
        (lambda raw: raw.replace(b'filename="a.pdf"', b'filename="=?utf-8?q?a=0D=0AX:_y?="'), "content-disposition"),
        (lambda raw: raw.replace(b"Subject: Hello", b"Subject: =?utf-8?q?Hel=0Alo?="), "subject header"),
        (lambda raw: raw.replace(b"Subject: Hello", "Subject: Hélló".encode()), "8-bit"),
    ],
)
def test_verify_refuses_bytes_that_say_something_else(tamper, reason: str) -> None:
    built, raw = _built()
    verify(built, raw, INTENDED)
    tampered = tamper(raw)
    assert tampered != raw
    with pytest.raises(VerificationError, match=reason):
        verify(built, tampered, INTENDED)


def test_verify_catches_what_this_python_refolds() -> None:
    # Built with no checks at all: on a Python with CVE-2024-6923 the bytes hold an extra header line,
    # which verify() refuses; on a fixed one the email package refuses to write it.
    built = EmailMessage(policy=SMTP)
    built["To"] = "bob@example.com"
    built["Subject"] = INJECTIONS["language suffix"]
    built.set_content("x")
    try:
        raw = built.as_bytes()
    except Exception:  # HeaderWriteError on a fixed Python
        assert not python_refolds_encoded_line_breaks()
        return
    assert b"\r\nX-Injected: yes\r\n" in raw
    with pytest.raises(VerificationError, match="other headers"):
        verify(built, raw, {"to": ["bob@example.com"]})


def test_the_probe_tells_whether_this_python_has_cve_2024_6923() -> None:
    version = sys.version_info[:3]
    vulnerable = (3, 11) <= version < (3, 11, 10) or (3, 12) <= version < (3, 12, 5)
    assert python_refolds_encoded_line_breaks() is vulnerable


_HEADER_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="\x7f"),
    min_size=1,
    max_size=120,
).filter(lambda s: s.strip() and "=?" not in s)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(subject=_HEADER_TEXT, name=_HEADER_TEXT, filename=_HEADER_TEXT)
def test_any_clean_subject_name_and_filename_builds_and_reads_back(subject: str, name: str, filename: str) -> None:
    raw = build(
        _message(
            subject=subject,
            sender_name=name,
            to=(Mailbox("bob@example.com", name),),
            attachments=(OutgoingAttachment(filename, b"x"),),
        )
    )
    parsed = email.message_from_bytes(raw, policy=default)
    assert " ".join(str(parsed["Subject"]).split()) == " ".join(subject.split())
    assert parsed["To"].addresses[0].addr_spec == "bob@example.com"
