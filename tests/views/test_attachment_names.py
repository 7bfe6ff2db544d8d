"""Received attachment names lose bidi overrides and other invisible characters: as stored by a fetch
through Dovecot, on the message page and in the download's Content-Disposition."""

from __future__ import annotations

from email.message import EmailMessage as MimeMessage
from email.policy import SMTP
from urllib.parse import unquote

from flask.testing import FlaskClient

from tests.servers.dovecot import Dovecot
from webapp.extensions import db
from webapp.services.identity import users
from webapp.services.reading import messages
from webapp.services.receiving import fetching

SPOOFED = {
    "invoice\u202efdp.exe": "invoicefdp.exe",  # shows as "invoiceexe.pdf" with the override
    "\u2067report\u2069 \u200b2026.pdf": "report 2026.pdf",
    "Grüße\u200e\u200f.txt": "Grüße.txt",
    "=?utf-8?q?scan=E2=80=AEgpj.js?=": "scangpj.js",
}


def _message() -> bytes:
    msg = MimeMessage(policy=SMTP)
    msg["From"] = "Mallory <mallory@example.test>"
    msg["To"] = "alice@example.test"
    msg["Subject"] = "Your invoice"
    msg.set_content("See attached.")
    for name in list(SPOOFED)[:3]:  # RFC 2231 (filename*=utf-8''...)
        msg.add_attachment(b"MZ data", maintype="application", subtype="octet-stream", filename=name)
    # The same trick as an RFC 2047 word in a quoted filename, as some mailers write it.
    msg.add_attachment(b"x", maintype="application", subtype="octet-stream", filename="PLACEHOLDER.js")
    return msg.as_bytes().replace(b'filename="PLACEHOLDER.js"', b'filename="=?utf-8?q?scan=E2=80=AEgpj.js?="')


def test_fetched_names_are_stored_shown_and_downloaded_without_invisible_characters(
    client: FlaskClient, dovecot: Dovecot, make_account, make_user, login
) -> None:
    dovecot.deliver("alice", _message())
    account = make_account()
    assert fetching.fetch(account).stored == 1
    (message,) = messages.listing(account)
    message = messages.ensure_parsed(message)
    assert [a.filename for a in message.attachments] == list(SPOOFED.values())
    users.grant(make_user("reader"), account, read=True, send=False)
    login("reader")
    page = client.get(f"/messages/{message.id}").get_data(as_text=True)
    assert "invoicefdp.exe" in page and "\u202e" not in page and "\u2067" not in page
    for attachment, expected in zip(message.attachments, SPOOFED.values(), strict=True):
        response = client.get(f"/messages/{message.id}/attachments/{attachment.id}")
        assert response.status_code == 200
        disposition = unquote(response.headers["Content-Disposition"])
        assert expected in disposition, disposition
        assert not any(c in disposition for c in "\u202e\u2067\u2069\u200b\u200e\u200f")


def test_names_stored_before_the_fix_are_cleaned_at_download(
    client: FlaskClient, dovecot: Dovecot, make_account, make_user, login
) -> None:
    dovecot.deliver("alice", _message())
    account = make_account()
    fetching.fetch(account)
    (message,) = messages.listing(account)
    attachment = messages.ensure_parsed(message).attachments[0]
    attachment.filename = "old\u202efdp.exe"  # as a row parsed by an earlier version holds it
    db.session.commit()
    users.grant(make_user("reader"), account, read=True, send=False)
    login("reader")
    response = client.get(f"/messages/{message.id}/attachments/{attachment.id}")
    assert response.headers["Content-Disposition"] == "attachment; filename=oldfdp.exe"
