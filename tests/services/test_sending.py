"""Sending over the test kit's SMTP server, read back over IMAP and POP3 byte for byte."""

from __future__ import annotations

import hashlib
import random

import pytest
from imapclient import IMAPClient

from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from tests.servers.pki import Pki
from tests.servers.ports import free_port
from tests.servers.smtp import SmtpServer
from webapp import connector
from webapp.extensions import db
from webapp.models import EmailMessage, ErrorLog
from webapp.services import errorlog, fetching, messages, sending
from webapp.services.errors import ConnectionFailed, Invalid
from webapp.services.sending import Draft, OutgoingAttachment

SUBJECT = "Grüße aus Köln — 東京 ✉"


def _draft(**over) -> Draft:
    values = {
        "to": "alice@example.test; Bob <bob@example.test>",
        "cc": "carol@example.test",
        "bcc": "dave@example.test",
        "subject": SUBJECT,
        "text": "Hallo Jürgen,\nsee the attachments.\n",
        "html": "<p>Hallo <b>Jürgen</b></p>",
    }
    values.update(over)
    return Draft(**values)


def test_send_with_attachments_reads_back_byte_for_byte_over_imap_and_pop3(
    make_account, smtp: SmtpServer, dovecot: Dovecot
) -> None:
    payload = random.Random(7).randbytes(150_000)
    attachments = (
        OutgoingAttachment("Bericht ä.bin", payload),
        OutgoingAttachment("notes.txt", "Zeile 1\r\nZeile 2 ✓\r\n".encode()),
    )
    account = make_account(display_name="Alice Ä")
    sent = sending.send(account, _draft(attachments=attachments))

    assert sent.status == "SENT" and sent.folder == "Sent" and sent.sent_at is not None
    assert sent.subject == SUBJECT
    assert [m["address"] for m in sent.bcc] == ["dave@example.test"]
    (received,) = smtp.received
    assert received.authenticated_as == "alice"
    assert set(received.rcpt_tos) == {
        "alice@example.test",
        "bob@example.test",
        "carol@example.test",
        "dave@example.test",
    }
    raw = messages.raw_bytes(sent)
    assert received.data == raw
    assert b"dave@example.test" not in raw  # BCC is never a header
    stored_sha = hashlib.sha256(raw).hexdigest()
    assert sent.raw_sha256 == stored_sha

    imap_summary = fetching.fetch(account)
    assert imap_summary.stored == 1
    pop_account = make_account(
        name="Pop", incoming_protocol="pop3", incoming_security="tls", incoming_port=dovecot.pop3s_port
    )
    assert fetching.fetch(pop_account).stored == 1
    for acc in (account, pop_account):
        (inbox,) = messages.listing(acc, "INBOX")
        assert messages.raw_bytes(inbox) == raw
        assert inbox.subject == SUBJECT
        assert inbox.from_name == "Alice Ä"
        names = {a.filename: a for a in inbox.attachments}
        assert set(names) == {"Bericht ä.bin", "notes.txt"}
        assert messages.attachment_bytes(names["Bericht ä.bin"]) == payload
        assert names["Bericht ä.bin"].sha256 == hashlib.sha256(payload).hexdigest()
        assert "Jürgen" in inbox.text_body and "<b>Jürgen</b>" in inbox.html_body


def test_connector_send_email_returns_true_and_accepts_a_mapping(make_account, smtp: SmtpServer, tmp_path) -> None:
    account = make_account()
    path = tmp_path / "report.csv"
    path.write_text("a,b\n1,2\n")
    assert connector.send_email(account.name, {"to": ["alice@example.test"], "subject": "Hi", "text": "x",
                                               "attachments": [str(path)]}) is True  # fmt: skip
    assert len(smtp.received) == 1
    assert b'filename="report.csv"' in smtp.received[0].data
    with pytest.raises(connector.Invalid, match="cannot be read"):
        connector.send_email(account, {"to": "a@b.test", "subject": "x", "text": "y", "attachments": ["/nonexistent"]})


@pytest.mark.parametrize(
    ("over", "reason"),
    [
        ({"to": ""}, "To: at least one recipient"),
        ({"subject": "  "}, "Subject: required"),
        ({"text": "", "html": ""}, "a text or HTML body is required"),
        ({"to": "ok@example.test; not-an-address"}, "'not-an-address' is not a valid email address"),
        ({"cc": "x@example.test, @bad"}, "CC: '@bad'"),
        ({"subject": "Hi\r\nBcc: victim@example.test"}, "Subject: line breaks"),
        ({"subject": "=?utf-8?q?Hi=0D=0ABcc:_victim@example.test?="}, "Subject: an encoded line break"),
        ({"subject": "Hi\x00there"}, "Subject: line breaks and NUL"),
        ({"to": "a@example.test\r\nRCPT TO:<x@y.test>"}, "To: line breaks"),
        ({"attachments": (OutgoingAttachment("a\r\nb.txt", b"x"),)}, "attachment filename"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(make_account, smtp: SmtpServer, over, reason) -> None:
    account = make_account()
    with pytest.raises(Invalid) as info:
        sending.send(account, _draft(**over))
    assert reason in str(info.value)
    assert smtp.received == []
    assert db.session.query(EmailMessage).count() == 0


def test_each_send_failure_has_its_own_message_and_error_log_entry(
    make_account, smtp: SmtpServer, dovecot: Dovecot, pki: Pki
) -> None:
    blackhole = FaultProxy(smtp.port, mode="blackhole").start()
    try:
        cases = [
            ("auth", {"password": "wrong password"}, "authentication failed"),
            ("refused", {"outgoing_port": free_port()}, "refused the connection"),
            ("tls", {"ca_cert_pem": pki.other_ca_pem.read_text()}, "certificate"),
            ("timeout", {"outgoing_port": blackhole.port, "timeout": 1}, "did not answer within 1 seconds"),
        ]
        for index, (kind, over, text) in enumerate(cases):
            account = make_account(name=f"case{index}", **over)
            with pytest.raises(ConnectionFailed) as info:
                sending.send(account, _draft())
            assert info.value.kind == kind, (kind, str(info.value))
            assert text in str(info.value)
            (entry,) = errorlog.entries(account)
            assert entry.operation == "send" and text in entry.message
            assert "wrong password" not in entry.message + entry.detail
    finally:
        blackhole.stop()
    assert db.session.query(EmailMessage).count() == 0


def test_server_refusals_4xx_and_5xx_are_reported(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    smtp.fail_with = "451 4.3.0 try again later"
    with pytest.raises(ConnectionFailed, match="451 4.3.0 try again later"):
        sending.send(account, _draft())
    smtp.fail_with = "554 5.7.1 rejected"
    with pytest.raises(ConnectionFailed, match="554 5.7.1 rejected"):
        sending.send(account, _draft())
    assert [e.operation for e in db.session.query(ErrorLog)] == ["send", "send"]
    assert db.session.query(EmailMessage).count() == 0


def test_plain_smtp_without_auth_and_implicit_tls(make_account, smtp: SmtpServer) -> None:
    relay = make_account(name="Relay", outgoing_security="none", smtp_auth="none")
    sending.send(relay, _draft(html=""))
    implicit = make_account(name="Implicit", outgoing_security="tls", outgoing_port=smtp.tls_port)
    sending.send(implicit, _draft(text=""))
    assert [r.authenticated_as for r in smtp.received] == [None, "alice"]


def test_nothing_changes_on_the_imap_server_when_fetching(
    make_account, smtp: SmtpServer, dovecot: Dovecot, pki
) -> None:
    account = make_account()
    sending.send(account, _draft())
    fetching.fetch(account)
    import ssl

    context = ssl.create_default_context(cafile=str(pki.ca_pem))
    with IMAPClient("127.0.0.1", port=dovecot.imaps_port, ssl=True, ssl_context=context) as client:
        client.login("alice", "alice-mail-pw")
        client.select_folder("INBOX", readonly=True)
        flags = client.get_flags(client.search(["ALL"]))
    assert flags and all(b"\\Seen" not in f for f in flags.values())
