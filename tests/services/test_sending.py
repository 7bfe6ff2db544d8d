"""Sending over the test kit's SMTP server, read back over IMAP and POP3 byte for byte."""

from __future__ import annotations

import email
import hashlib
import random
import re
from email.policy import default

import pytest
from imapclient import IMAPClient

from tests.headerinjection import ENCODED, INJECTIONS, refused_for_a_reason
from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from tests.servers.pki import Pki
from tests.servers.ports import refused_port
from tests.servers.smtp import SmtpServer
from webapp import connector
from webapp.extensions import db
from webapp.models import EmailMessage, ErrorLog
from webapp.services.account import errorlog
from webapp.services.errors import ConnectionFailed, Invalid
from webapp.services.outgoing import sending
from webapp.services.outgoing.sending import Draft, OutgoingAttachment
from webapp.services.platform import failpoints
from webapp.services.reading import messages
from webapp.services.receiving import fetching

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
            ("refused", {"outgoing_port": refused_port()}, "refused the connection"),
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


@pytest.mark.parametrize("variant", list(INJECTIONS))
def test_header_injection_is_refused_in_every_header_and_nothing_reaches_the_server(
    make_account, smtp: SmtpServer, variant: str
) -> None:
    value = INJECTIONS[variant]
    account = make_account()
    slots = {
        "Subject": _draft(subject=value),
        "attachment filename": _draft(attachments=(OutgoingAttachment(value, b"x"),)),
        "To": _draft(to=f'"{value}" <bob@example.test>'),
        "CC": _draft(cc=f"carol@example.test, {value} <dave@example.test>"),
    }
    for label, draft in slots.items():
        with pytest.raises(Invalid) as info:
            sending.send(account, draft)
        assert str(info.value).startswith(label) and refused_for_a_reason(str(info.value)), (label, str(info.value))
    # The account's own display name (set by an admin) goes into From: checked the same way. (Raw line
    # breaks never get that far: the account form refuses them, and PostgreSQL cannot store a NUL.)
    if variant in ENCODED:
        account.display_name = value
        db.session.commit()
        with pytest.raises(Invalid, match="^From display name") as info:
            sending.send(account, _draft())
        assert refused_for_a_reason(str(info.value))
    assert smtp.received == []
    assert db.session.query(EmailMessage).count() == 0


def test_display_names_go_out_and_are_kept_in_the_sent_copy(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    draft = _draft(
        to='"Doe, John" <doe@example.test>; Bob <bob@example.test>, dev@localhost',
        cc="Jürgen Größ <carol@example.test>",
        bcc="Hidden Person <dave@example.test>",
    )
    sent = sending.send(account, draft)
    (received,) = smtp.received
    assert received.rcpt_tos == [
        "doe@example.test",
        "bob@example.test",
        "dev@localhost",
        "carol@example.test",
        "dave@example.test",
    ]
    headers = received.data.split(b"\r\n\r\n")[0].decode("ascii")
    assert 'To: "Doe, John" <doe@example.test>, Bob <bob@example.test>, dev@localhost\r\n' in headers
    assert "Cc: =?utf-8?" in headers and "<carol@example.test>" in headers
    assert "dave@example.test" not in headers and "Hidden" not in headers
    assert sent.mailboxes("to") == [
        {"name": "Doe, John", "address": "doe@example.test"},
        {"name": "Bob", "address": "bob@example.test"},
        {"name": "", "address": "dev@localhost"},
    ]
    assert sent.mailboxes("cc") == [{"name": "Jürgen Größ", "address": "carol@example.test"}]
    assert [m["address"] for m in sent.bcc] == ["dave@example.test"]


def test_an_account_on_a_dotless_domain_sends(make_account, smtp: SmtpServer) -> None:
    account = make_account(address="dev@localhost")
    sending.send(account, _draft(to="other@localhost"))
    (received,) = smtp.received
    assert received.mail_from == "dev@localhost"
    assert received.rcpt_tos == ["other@localhost", "carol@example.test", "dave@example.test"]


def test_an_idn_domain_goes_out_as_idna_with_or_without_smtputf8(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    for offered in (True, False):
        smtp.smtputf8 = offered
        sent = sending.send(account, _draft(to="Xavier <x@exämple.test>", cc="", bcc=""))
        received = smtp.received[-1]
        assert received.rcpt_tos == ["x@xn--exmple-cua.test"]
        assert "SMTPUTF8" not in received.mail_options
        assert b"To: Xavier <x@xn--exmple-cua.test>\r\n" in received.data
        assert sent.mailboxes("to") == [{"name": "Xavier", "address": "x@xn--exmple-cua.test"}]
    assert errorlog.entries(account) == []


def test_a_non_ascii_local_part_uses_smtputf8_where_offered(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    sent = sending.send(account, _draft(to="Jürgen <jü@exämple.test>", cc="", bcc=""))
    (received,) = smtp.received
    assert "SMTPUTF8" in received.mail_options
    assert received.rcpt_tos == ["jü@xn--exmple-cua.test"]
    assert "To: Jürgen <jü@exämple.test>\r\n".encode() in received.data
    assert sent.mailboxes("to") == [{"name": "Jürgen", "address": "jü@exämple.test"}]


def test_a_non_ascii_local_part_is_refused_clearly_without_smtputf8(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    smtp.smtputf8 = False
    for draft in (_draft(to="jü@exämple.test"), _draft(bcc="ä@example.test")):
        with pytest.raises(ConnectionFailed) as info:
            sending.send(account, draft)
        assert info.value.kind == "smtputf8"
        assert "does not accept non-ASCII addresses (no SMTPUTF8)" in str(info.value)
    assert "jü@exämple.test" in str(errorlog.entries(account)[1].message)
    assert "ä@example.test" in str(errorlog.entries(account)[0].message)
    assert smtp.received == []
    assert db.session.query(EmailMessage).count() == 0


def test_an_account_address_with_a_non_ascii_local_part_needs_smtputf8(make_account, smtp: SmtpServer) -> None:
    account = make_account(address="jürgen@exämple.test")
    sending.send(account, _draft())
    assert smtp.received[0].mail_from == "jürgen@xn--exmple-cua.test"
    smtp.smtputf8 = False
    with pytest.raises(ConnectionFailed, match=r"no SMTPUTF8\): jürgen@exämple.test"):
        sending.send(account, _draft())


def test_an_html_only_message_is_sent_with_a_generated_text_part(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    sending.send(account, _draft(text="", html="<p>Hello <a href='https://x.test/'>there</a></p><script>x</script>"))
    parsed = email.message_from_bytes(smtp.received[0].data, policy=default)
    assert parsed.get_content_type() == "multipart/alternative"
    assert parsed.get_body(("plain",)).get_content().strip() == "Hello there (https://x.test/)"


@pytest.mark.parametrize(
    ("point", "error", "text"),
    [
        ("send_build", Invalid, "the message could not be built: unexpected error (FailPoint)"),
        ("send_smtp", ConnectionFailed, "Outgoing server: unexpected error (FailPoint)"),
    ],
)
def test_an_unexpected_error_is_a_clear_error_with_an_error_log_entry(
    app, make_account, smtp: SmtpServer, point: str, error: type, text: str
) -> None:
    account = make_account()
    with pytest.raises(error, match=re.escape(text)):
        sending.send(account, _draft(), failpoints=failpoints.FailPoints({point: (1, "raise")}))
    (entry,) = errorlog.entries(account)
    assert entry.operation == "send" and entry.message == text and "kind=unexpected" in entry.detail
    assert smtp.received == []


def test_bodies_that_are_not_unicode_are_refused(make_account, smtp: SmtpServer) -> None:
    account = make_account()
    with pytest.raises(Invalid, match="HTML: holds bytes that are not valid UTF-8"):
        sending.send(account, _draft(html="caf\udce9"))
    assert smtp.received == []
