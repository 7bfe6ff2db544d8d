"""Parsing received messages: it never raises, and reads what real mail contains."""

from __future__ import annotations

import base64
import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.servers import messages as generated
from webapp.adapters.mime.parser import Mailbox, clean, parse


def _msg(**headers: str) -> EmailMessage:
    msg = EmailMessage(policy=SMTP)
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def test_headers_addresses_and_dates() -> None:
    msg = _msg(From='"Müller, Jürgen" <j@example.test>', To="a@example.test, B <b@example.test>",
               Cc="Team: c@example.test, d@example.test;", Reply_To="r@example.test",
               Subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?= and more", Message_ID="<abc@example.test>",
               Date="Tue, 24 Nov 2026 12:00:00 +0100")  # fmt: skip
    msg.set_content("hi")
    parsed = parse(msg.as_bytes())
    assert parsed.sender == Mailbox("Müller, Jürgen", "j@example.test")
    assert parsed.to == (Mailbox("", "a@example.test"), Mailbox("B", "b@example.test"))
    assert [m.address for m in parsed.cc] == ["c@example.test", "d@example.test"]
    assert parsed.reply_to == (Mailbox("", "r@example.test"),)
    assert parsed.subject == "Grüße and more"
    assert parsed.message_id == "abc@example.test"
    assert parsed.date == datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    assert parsed.text == "hi\n" and parsed.error is None


@pytest.mark.parametrize("charset", ["iso-8859-1", "koi8-r", "shift_jis", "gb2312", "cp1252", "utf-16", "big5"])
def test_bodies_in_any_python_charset(charset: str) -> None:
    text = {"koi8-r": "Привет", "shift_jis": "こんにちは", "gb2312": "你好", "big5": "你好"}.get(charset, "Grüße €")
    if charset == "iso-8859-1":
        text = "Grüße"
    raw = (
        f"From: a@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset={charset}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + __import__("base64").encodebytes(text.encode(charset)).replace(b"\n", b"\r\n")
    parsed = parse(raw)
    assert parsed.text.strip() == text and parsed.error is None


def test_attachments_inline_parts_rfc2231_names_and_nested_messages() -> None:
    inner = _msg(From="x@example.test", Subject="Inner mail")
    inner.set_content("inner body")
    msg = _msg(From="a@example.test", Subject="outer")
    msg.set_content("text body")
    msg.add_alternative('<p>html <img src="cid:img1@x"></p>', subtype="html")
    msg.get_payload()[1].add_related(b"PNGDATA", maintype="image", subtype="png", cid="<img1@x>")
    pdf_name = "Prüfbericht \u2013 2026.pdf"
    msg.add_attachment(b"\x00\x01", maintype="application", subtype="octet-stream", filename=pdf_name)
    msg.add_attachment(inner)
    raw = msg.as_bytes()
    assert b"filename*=utf-8''Pr%C3%BCfbericht" in raw  # RFC 2231 on the wire
    parsed = parse(raw)
    assert parsed.text == "text body\n" and '<img src="cid:img1@x">' in parsed.html
    inline, pdf, nested = parsed.parts
    assert (inline.content_id, inline.inline, inline.content) == ("img1@x", True, b"PNGDATA")
    assert (pdf.filename, pdf.content, pdf.inline) == (pdf_name, b"\x00\x01", False)
    assert nested.content_type == "message/rfc822" and nested.filename == "Inner mail.eml"
    assert b"inner body" in nested.content


def test_hostile_filenames_lose_their_path_and_line_breaks() -> None:
    raw = (
        b"From: a@example.test\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\n'
        b"Content-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="..\\\\..\\\\evil.exe"\r\n'
        b"\r\nAAAA\r\n--b--\r\n"
    )
    (part,) = parse(raw).parts
    assert part.filename == "evil.exe"


def test_broken_input_is_described_never_raised() -> None:
    assert parse(b"").error is None
    no_boundary = parse(generated.make(5, "malformed"))
    assert no_boundary.error and "StartBoundaryNotFoundDefect" in no_boundary.error
    eight_bit = parse("From: Jürgen <j@example.test>\r\nSubject: Grüße\r\n\r\nbody".encode())
    assert eight_bit.subject == "Grüße" and eight_bit.sender == Mailbox("Jürgen", "j@example.test")
    zoneless = parse(b"Date: Tue, 24 Nov 2026 12:00:00 -0000\r\n\r\nx")
    assert zoneless.date == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse(b"Date: yesterday-ish\r\n\r\nx").date is None
    assert "\x00" not in parse(b"Subject: a\x00b\r\n\r\nc\x00d").subject


def test_clean_turns_surrogates_into_text() -> None:
    assert clean("J\udcc3\udcbcrgen") == "Jürgen"
    assert clean("bad \udcff byte") == "bad \ufffd byte"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_parse_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    parsed = parse(raw)
    for text in (parsed.subject, parsed.text, parsed.html, *(p.filename for p in parsed.parts)):
        text.encode("utf-8")  # storable in any database
        assert "\x00" not in text


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                b"From: a@b.c\r\n",
                b"Content-Type: multipart/mixed; boundary=x\r\n",
                b"--x\r\n",
                b"--x--\r\n",
                b"\r\n",
                b"Content-Type: message/rfc822\r\n",
                b"=?utf-8?b?ZZ?=\r\n",
                b"Content-Transfer-Encoding: base64\r\n",
                b"text\r\n",
                b"\xff\xfe\r\n",
            ]
        ),
        max_size=40,
    )
)
def test_parse_never_raises_on_mime_shaped_garbage(chunks: list[bytes]) -> None:
    parse(b"".join(chunks))


def _without_fast_tree(raw: bytes):
    import webapp.adapters.mime.parser as parser_module

    saved = parser_module.FAST_TREE_BYTES
    parser_module.FAST_TREE_BYTES = 10**12
    try:
        return parse(raw)
    finally:
        parser_module.FAST_TREE_BYTES = saved


def _shape(parsed):
    return (parsed.text, parsed.html, parsed.error, parsed.defects,
            [(p.filename, p.content_type, p.content, p.inline, p.content_id) for p in parsed.parts])  # fmt: skip


def test_the_fast_tree_for_big_messages_reads_exactly_what_the_feed_parser_reads() -> None:
    import random

    from webapp.adapters.mime import mimetree

    rng = random.Random(5)
    inner = _msg(From="x@example.test", Subject="Inner")
    inner.set_content("inner body")
    inner.add_attachment(rng.randbytes(50_000), maintype="image", subtype="png", filename="in.png")
    outer = _msg(From="a@example.test", Subject="outer")
    outer.set_content("text body\n.dotted line\n")
    outer.add_alternative("<p>html</p>", subtype="html")
    outer.add_attachment(rng.randbytes(120_000), maintype="application", subtype="pdf", filename="big.pdf")
    outer.add_attachment(inner)
    outer.add_attachment("Grüße\n" * 5000, subtype="plain", filename="notes.txt")
    samples = [outer.as_bytes(), *(generated.make(i, "attachment") + b"x" * 40_000 for i in range(3))]
    with_preamble = samples[0].replace(b"\r\n\r\n--", b"\r\n\r\nThis is a preamble.\r\n--", 1) + b"epilogue\r\n"
    samples.append(with_preamble)
    for raw in samples:
        assert mimetree.build(raw) is not None or raw is not samples[0]
        assert _shape(parse(raw)) == _shape(_without_fast_tree(raw))
    unclosed = samples[0][: samples[0].rindex(b"--\r\n")]  # the closing boundary is missing
    assert mimetree.build(unclosed) is None  # the feed parser handles (and records) it
    assert _shape(parse(unclosed)) == _shape(_without_fast_tree(unclosed))


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=50_000), st.sampled_from(["", "=", "==", "\r\n", "!!"]))
def test_base64_parts_decode_exactly_as_emails_own_decoder(content: bytes, tail: str) -> None:
    # Our fast base64 path must give the bytes email's decoder gives, for good and for damaged payloads.
    body = base64.encodebytes(content).decode("ascii").replace("\n", "\r\n") + tail
    raw = (
        "From: a@example.test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
        "--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        "--b\r\nContent-Type: application/octet-stream; name=x.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        f"{body}\r\n--b--\r\n"
    ).encode("ascii")
    expected = email.message_from_bytes(raw, policy=email.policy.compat32).get_payload()[1].get_payload(decode=True)
    (part,) = parse(raw).parts
    assert part.content == expected
