"""Accounts in the UI: add, edit, test connection, warnings, remove; passwords encrypted at rest."""

from __future__ import annotations

import html

from flask.testing import FlaskClient
from sqlalchemy import text

from tests.servers.dovecot import Dovecot
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from webapp.extensions import db
from webapp.models import ErrorLog
from webapp.services.account import accounts


def _form(dovecot: Dovecot, smtp: SmtpServer, pki: Pki, **over: str) -> dict[str, object]:
    values: dict[str, object] = {
        "name": "Work",
        "address": "alice@example.test",
        "display_name": "Alice",
        "username": "alice",
        "password": "alice-mail-pw",
        "incoming_protocol": "imap",
        "incoming_security": "tls",
        "incoming_host": "127.0.0.1",
        "incoming_port": dovecot.imaps_port,
        "folder": "INBOX",
        "outgoing_host": "127.0.0.1",
        "outgoing_port": smtp.port,
        "outgoing_security": "starttls",
        "smtp_auth": "login",
        "timeout": 5,
        "tls_verify": "custom",
        "ca_cert_pem": pki.ca_pem.read_text(),
        "fetch_count": 20,
        "sanitize_html": "y",
    }
    values.update(over)
    return values


def test_add_test_edit_and_remove_an_account(
    client: FlaskClient, make_user, login, post_form, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user
) -> None:
    make_user("boss", role="admin")
    login("boss")
    added = post_form("/accounts/new", _form(dovecot, smtp, pki))
    assert added.status_code == 302, added.get_data(as_text=True)
    account = accounts.get("work")
    stored = db.session.execute(text("select password_encrypted from email_account")).scalar_one()
    assert "alice-mail-pw" not in stored
    page = client.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert "alice-mail-pw" not in page

    token = client.get(f"/accounts/{account.id}").get_data(as_text=True)
    from tests.conftest import csrf_token

    tested = client.post(
        f"/accounts/{account.id}/test", data={"csrf_token": csrf_token(token)}, headers={"HX-Request": "true"}
    )
    fragment = tested.get_data(as_text=True)
    assert "HX-Request" in tested.headers["Vary"]
    assert fragment.startswith('<div id="test-result"')
    # Each server is asked for at once by a request of its own; each answers with its result.
    assert "Testing IMAP…" in fragment and "Testing SMTP…" in fragment
    results = {}
    for server in ("incoming", "outgoing"):
        assert f'hx-post="/accounts/{account.id}/test/{server}" hx-trigger="load"' in fragment
        answer = client.post(f"/accounts/{account.id}/test/{server}", data={"csrf_token": csrf_token(token)})
        results[server] = answer.get_data(as_text=True)
    assert "IMAP login OK" in results["incoming"] and "SMTP login OK" in results["outgoing"]

    # Editing without a password keeps the stored one; a wrong one makes the test fail in plain words.
    edit = f"/accounts/{account.id}/edit"
    assert post_form(edit, _form(dovecot, smtp, pki, password="", name="Work Mail")).status_code == 302
    assert accounts.incoming_auth(accounts.get("Work Mail")).password == "alice-mail-pw"
    # A new password is tested before it is saved: refused, the form says why and keeps the stored one.
    refused = html.unescape(post_form(edit, _form(dovecot, smtp, pki, password="wrong-pw-42")).get_data(as_text=True))
    assert "Incoming server: authentication failed" in refused and "nothing was saved" in refused
    assert "wrong-pw-42" not in refused and 'name="save_anyway"' in refused
    assert accounts.incoming_auth(accounts.get("Work Mail")).password == "alice-mail-pw"
    over = _form(dovecot, smtp, pki, password="wrong-pw-42", name="Work Mail", save_anyway="1")
    assert post_form(edit, over).status_code == 302  # Save anyway
    result = post_form(f"/accounts/{account.id}", {}, url=f"/accounts/{account.id}/test").get_data(as_text=True)
    assert "Incoming server: authentication failed" in result
    assert "Outgoing server: authentication failed" in result
    assert "wrong-pw-42" not in result
    logs = client.get(f"/accounts/{account.id}/errors").get_data(as_text=True)
    assert logs.count("authentication failed") == 2
    assert "wrong-pw-42" not in logs

    removed = post_form(f"/accounts/{account.id}/delete", {})
    assert removed.status_code == 302
    assert accounts.find("Work Mail") is None
    assert db.session.query(ErrorLog).count() == 0


def test_each_failure_is_explained(
    client: FlaskClient, make_user, login, post_form, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user
) -> None:
    from tests.servers.ports import refused_port

    make_user("boss", role="admin")
    login("boss")
    cases = {
        "dns": ({"incoming_host": "mail.invalid"}, "DNS: the name 'mail.invalid' could not be resolved"),
        "refused": ({"incoming_port": refused_port()}, "refused the connection"),
        "tls": ({"ca_cert_pem": pki.other_ca_pem.read_text()}, "certificate of IMAP server 127.0.0.1"),
    }
    for index, (kind, (over, expected)) in enumerate(cases.items()):
        refused = post_form("/accounts/new", _form(dovecot, smtp, pki, name=f"case{index}", **over))
        assert expected in html.unescape(refused.get_data(as_text=True)) and accounts.find(f"case{index}") is None
        post_form("/accounts/new", _form(dovecot, smtp, pki, name=f"case{index}", save_anyway="1", **over))
        account = accounts.get(f"case{index}")
        page = html.unescape(
            post_form(f"/accounts/{account.id}", {}, url=f"/accounts/{account.id}/test").get_data(as_text=True)
        )
        assert expected in page, (kind, page)
        assert f'data-kind="{kind}"' in page


def test_verification_off_shows_a_warning_and_bad_input_is_named(
    client: FlaskClient, make_user, login, post_form, dovecot: Dovecot, smtp: SmtpServer, pki: Pki
) -> None:
    make_user("boss", role="admin")
    login("boss")
    post_form("/accounts/new", _form(dovecot, smtp, pki, tls_verify="off", ca_cert_pem=""))
    account = accounts.get("Work")
    assert "verification is off" in client.get(f"/accounts/{account.id}").get_data(as_text=True)
    bad = post_form("/accounts/new", _form(dovecot, smtp, pki, name="Other", address="not-an-address"))
    assert "address: &#39;not-an-address&#39; is not an email address" in bad.get_data(as_text=True)
    crlf = post_form("/accounts/new", _form(dovecot, smtp, pki, name="Other", username="a\r\nb"))
    assert "line breaks and NUL are not allowed" in crlf.get_data(as_text=True)
    dup = post_form("/accounts/new", _form(dovecot, smtp, pki, name="WORK"))
    assert "already exists" in dup.get_data(as_text=True)
