"""Header injection beyond the suite's table, through the connector (the same service as page and CLI)."""

from __future__ import annotations

import base64
import email
from email import policy

import pytest

from tests.servers.smtp import SmtpServer
from webapp import connector
from webapp.services.errors import ConnectorError


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


EXTRA = {
    "unicode_escape charset": "=?unicode_escape?q?Invoice\\r\\nX-Injected:_yes?=",
    "raw_unicode_escape": "=?raw_unicode_escape?q?Invoice\\u000d\\u000aX-Injected:_yes?=",
    "utf-16 B": "=?utf-16?b?" + _b64("Invoice\r\nX-Injected: yes".encode("utf-16")) + "?=",
    "utf-32 B": "=?utf-32?b?" + _b64("Invoice\r\nX-Injected: yes".encode("utf-32")) + "?=",
    "CR and LF split over two words": "=?utf-8?q?Invoice=0D?= =?utf-8?q?=0AX-Injected:_yes?=",
    "base64 with spaces inside": "=?utf-8?b?"
    + _b64(b"Invoice\r\nX-Injected: yes")[:8]
    + " "
    + _b64(b"Invoice\r\nX-Injected: yes")[8:]
    + "?=",
    "NEL U+0085": "Invoice\x85X-Injected: yes",
    "LS U+2028": "Invoice\u2028X-Injected: yes",
    "encoded NEL": "=?utf-8?q?Invoice=C2=85X-Injected:_yes?=",
    "encoded LS": "=?utf-8?q?Invoice=E2=80=A8X-Injected:_yes?=",
    "latin-1 NEL": "=?iso-8859-1?q?Invoice=85X-Injected:_yes?=",
    "cp1252 0x85 (ellipsis, fine)": "=?cp1252?q?Invoice=85?=",
    "quoted-printable soft break": "=?utf-8?q?Invoice=\r\n X-Injected:_yes?=",
    "double encoded": "=?utf-8?q?=3D=3Futf-8=3Fq=3FInvoice=3D0D=3D0AX-Injected=3A=5Fyes=3F=3D?=",
    "punycode charset": "=?punycode?q?Invoice-?=",
    "bidi override": "Invoice \u202egpj.exe",
}


@pytest.mark.parametrize("variant", sorted(EXTRA))
@pytest.mark.parametrize("where", ["subject", "to name", "filename"])
def test_connector_send_never_sends_an_extra_header(make_account, smtp: SmtpServer, variant: str, where: str) -> None:
    make_account()
    value = EXTRA[variant]
    message = {"to": "bob@example.test", "subject": "Hi", "text": "x"}
    if where == "subject":
        message["subject"] = value
    elif where == "to name":
        message["to"] = f'"{value}" <bob@example.test>'
    else:
        message["attachments"] = [connector.OutgoingAttachment(value, b"data")]
    try:
        connector.send_email("Work", message)
    except ConnectorError:
        assert smtp.received == []
        return
    (received,) = smtp.received
    parsed = email.message_from_bytes(received.data, policy=policy.default)
    names = [k.lower() for k in parsed]
    assert "x-injected" not in names and names.count("reply-to") == 0, (variant, names)
    for part in parsed.walk():
        assert "x-injected" not in [k.lower() for k in part]
    raw_headers = received.data.split(b"\r\n\r\n", 1)[0]
    assert b"\nX-Injected" not in raw_headers
