"""Generated test messages: text, HTML, multipart, attachments, non-ASCII, and some malformed ones."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

KINDS = ("text", "html", "alternative", "attachment", "non_ascii", "malformed")
_CRLF_POLICY = SMTP  # CRLF line endings, as servers store and send them


def make(index: int, kind: str, *, to: str = "alice@example.test", seed: int = 0) -> bytes:
    """Return message number ``index`` of the given kind, as bytes with CRLF line endings."""
    rng = random.Random(seed * 100_003 + index)
    if kind == "malformed":
        return _malformed(index, rng)
    msg = EmailMessage(policy=_CRLF_POLICY)
    msg["From"] = f"Sender {index} <sender{index}@example.test>"
    msg["To"] = to
    msg["Date"] = format_datetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=index))
    msg["Message-ID"] = make_msgid(idstring=f"m{index}", domain="example.test")
    text = f"Message {index}.\n" + " ".join(f"word{rng.randint(0, 999)}" for _ in range(rng.randint(5, 80)))
    if kind == "text":
        msg["Subject"] = f"Text message {index}"
        msg.set_content(text)
    elif kind == "html":
        msg["Subject"] = f"HTML message {index}"
        msg.set_content(f"<html><body><p>{text}</p></body></html>", subtype="html")
    elif kind == "alternative":
        msg["Subject"] = f"Alternative message {index}"
        msg.set_content(text)
        msg.add_alternative(f"<p><b>{text}</b></p>", subtype="html")
    elif kind == "attachment":
        msg["Subject"] = f"Attachment message {index}"
        msg.set_content(text)
        size = rng.choice([100, 5_000, 60_000])
        msg.add_attachment(
            rng.randbytes(size), maintype="application", subtype="octet-stream", filename=f"data-{index}.bin"
        )
    elif kind == "non_ascii":
        msg["Subject"] = f"Grüße aus Köln — 東京 {index} ✉"
        msg.replace_header("From", f"Jürgen Größ {index} <juergen{index}@example.test>")
        msg.set_content(f"Schöne Grüße, {index}. Ünïcödé: ✓ 日本語\n{text}")
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return msg.as_bytes()


def _malformed(index: int, rng: random.Random) -> bytes:
    variants = [
        # A multipart whose boundary never appears.
        b"From: broken@example.test\r\nSubject: Broken multipart %d\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="nothere"\r\n\r\njust text, no parts\r\n',
        # An unknown charset and invalid base64.
        b"From: broken@example.test\r\nSubject: Bad charset %d\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=x-no-such-charset\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"!!!not base64!!!\r\n",
        # Headers with raw 8-bit bytes and a broken encoded word.
        b"From: =?utf-8?q?broken?= <\xff\xfe@example.test>\r\nSubject: =?utf-8?b?invalid%d\r\n\r\nbody\r\n",
    ]
    return variants[(index // len(KINDS)) % len(variants)].replace(b"%d", str(index).encode())


def mix(count: int, *, to: str = "alice@example.test", seed: int = 0) -> list[bytes]:
    """``count`` messages cycling through every kind."""
    return [make(i, KINDS[i % len(KINDS)], to=to, seed=seed) for i in range(count)]
