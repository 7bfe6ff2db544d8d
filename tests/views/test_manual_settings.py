"""Manual settings, as a new admin meets the form: Test before Save, Receive/Send switches, the CA
certificate uploaded, the folder picker for an account not saved yet, the usual port when none is typed,
a shared mailbox — each posted as the browser posts the page's own form."""

from __future__ import annotations

import html
import io
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.formpage import submit
from tests.servers.dovecot import Dovecot
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from webapp.services.account import accounts


@pytest.fixture
def admin(client: FlaskClient, make_user, login) -> FlaskClient:
    make_user("boss", role="admin")
    login("boss")
    return client


def _values(dovecot: Dovecot, smtp: SmtpServer, **over: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "name": "Work",
        "address": "alice@example.test",
        "username": "alice",
        "password": "alice-mail-pw",
        "incoming_host": "127.0.0.1",
        "incoming_port": str(dovecot.imaps_port),
        "outgoing_host": "127.0.0.1",
        "outgoing_port": str(smtp.port),
        "tls_verify": "custom",
        "timeout": "5",
    }
    values.update(over)
    return values


def _post(client: FlaskClient, url: str, page_url: str, changes: dict[str, Any], **kwargs: Any) -> Any:
    page = client.get(page_url).get_data(as_text=True)
    return client.post(url, data=submit(page, changes), content_type="multipart/form-data", **kwargs)


def test_the_form_is_short_and_says_where_the_rest_is(admin: FlaskClient) -> None:
    page = admin.get("/accounts/new").get_data(as_text=True)
    assert "setup wizard" in page
    for section in ("Advanced: fetching and folders", "Advanced: queued mail", "Advanced: security and certificates"):
        assert f"<summary>{section}</summary>" in page
    assert '<textarea id="folders"' not in page and 'name="ca_cert_file" type="file"' in page
    assert page.count("data-ports=") == 2 and 'data-role="port"' in page


def test_test_before_save_with_an_uploaded_ca_and_the_usual_port(
    admin: FlaskClient, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user
) -> None:
    ca = (io.BytesIO(pki.ca_pem.read_bytes()), "ca.pem")
    # Test: nothing is saved, each server's result is shown (the HTMX fragment).
    tested = _post(
        admin,
        "/accounts/test-settings",
        "/accounts/new",
        {**_values(dovecot, smtp), "ca_cert_file": ca},
        headers={"HX-Request": "true"},
    )
    fragment = html.unescape(tested.get_data(as_text=True))
    assert fragment.startswith('<div id="form-test"') and "IMAP login OK" in fragment and "SMTP login OK" in fragment
    assert accounts.all_accounts() == []
    # Save tests first: a wrong password saves nothing and offers Save anyway.
    ca = (io.BytesIO(pki.ca_pem.read_bytes()), "ca.pem")
    refused = _post(
        admin, "/accounts/new", "/accounts/new", {**_values(dovecot, smtp, password="nope"), "ca_cert_file": ca}
    )
    page = html.unescape(refused.get_data(as_text=True))
    assert "authentication failed" in page and 'name="save_anyway"' in page and accounts.all_accounts() == []
    ca = (io.BytesIO(pki.ca_pem.read_bytes()), "ca.pem")
    saved = _post(admin, "/accounts/new", "/accounts/new", {**_values(dovecot, smtp), "ca_cert_file": ca})
    assert saved.status_code == 302, saved.get_data(as_text=True)
    account = accounts.get("Work")
    assert account.ca_cert_pem == pki.ca_pem.read_text() and account.tls_verify == "custom"
    # A change of server without the password typed again is refused: a stored password goes only to the
    # servers it was saved for. No port typed: the usual one for the protocol and security.
    edit = f"/accounts/{account.id}/edit"
    moved = _post(admin, edit, edit, {"incoming_port": "", "outgoing_port": "", "save_anyway": "1"})
    assert "password: type it again" in html.unescape(moved.get_data(as_text=True))
    assert accounts.get("Work").incoming_port == dovecot.imaps_port
    moved = {"incoming_port": "", "outgoing_port": "", "save_anyway": "1", "password": "alice-mail-pw"}
    assert _post(admin, edit, edit, moved).status_code == 302
    account = accounts.get("Work")
    assert (account.incoming_port, account.outgoing_port) == (993, 587)
    # Fetch options alone are saved without a test (nothing about the servers changed).
    _post(admin, edit, edit, {"fetch_count": "7", "incoming_port": "993", "outgoing_port": "587"})
    assert accounts.get("Work").fetch_count == 7


def test_bad_uploads_are_refused_in_words(admin: FlaskClient, dovecot: Dovecot, smtp: SmtpServer) -> None:
    for upload in ((io.BytesIO(b"not a certificate"), "ca.pem"), (io.BytesIO(b"x" * 70_000), "big.pem")):
        answer = _post(admin, "/accounts/new", "/accounts/new", {**_values(dovecot, smtp), "ca_cert_file": upload})
        assert "CA certificate: upload a PEM file" in html.unescape(answer.get_data(as_text=True))
    assert accounts.all_accounts() == []


def test_switches_make_send_only_and_receive_only_accounts(
    admin: FlaskClient, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user
) -> None:
    pem = pki.ca_pem.read_text()
    send_only = _values(dovecot, smtp, name="Relay", receive="0", ca_cert_pem=pem)
    assert _post(admin, "/accounts/new", "/accounts/new", send_only).status_code == 302
    receive_only = _values(dovecot, smtp, name="Archive", send="0", ca_cert_pem=pem)
    assert _post(admin, "/accounts/new", "/accounts/new", receive_only).status_code == 302
    relay, archive = accounts.get("Relay"), accounts.get("Archive")
    assert (relay.receives, relay.sends, archive.receives, archive.sends) == (False, True, True, False)
    # The edit form shows the switches as they are, and keeps them.
    page = admin.get(f"/accounts/{relay.id}/edit").get_data(as_text=True)
    assert 'name="receive" value="1">' in page and 'name="send" value="1" checked>' in page
    listing = admin.get("/accounts/").get_data(as_text=True)
    assert "(send-only)" in listing and "(receive-only)" in listing
    both_off = _values(dovecot, smtp, name="None", receive="0", send="0", ca_cert_pem=pem)
    refused = _post(admin, "/accounts/new", "/accounts/new", both_off)
    assert "needs an incoming server, an outgoing server, or both" in html.unescape(refused.get_data(as_text=True))


def test_the_folder_picker_works_before_the_account_is_saved(
    admin: FlaskClient, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user
) -> None:
    dovecot.doveadm("mailbox", "create", "-u", "alice", "Projects")
    values = _values(dovecot, smtp, ca_cert_pem=pki.ca_pem.read_text())
    picker = _post(admin, "/accounts/form-folders", "/accounts/new", values, headers={"HX-Request": "true"})
    fragment = picker.get_data(as_text=True)
    assert 'value="Projects"' in fragment and 'value="INBOX"' in fragment
    assert accounts.all_accounts() == []
    # Ticked on the page, saved with the account.
    page = (
        admin.get("/accounts/new")
        .get_data(as_text=True)
        .replace(
            '<div id="server-folders">',
            '<div id="server-folders">' + fragment.split('<div id="server-folders">', 1)[1],
            1,
        )
    )
    data = submit(page, {**values, "picked_folders": ["INBOX", "Projects"]})
    assert admin.post("/accounts/new", data=data).status_code == 302
    assert accounts.get("Work").fetch_folders == ["INBOX", "Projects"]
    wrong = _post(admin, "/accounts/form-folders", "/accounts/new", {**values, "password": "nope"})
    assert "authentication failed" in html.unescape(wrong.get_data(as_text=True))


def test_a_shared_mailbox_from_the_form(admin: FlaskClient, dovecot: Dovecot, make_account) -> None:
    primary = make_account(name="Alice")
    dovecot.add_master("alice", "alice-mail-pw")
    dovecot.add_user("sales", "sales-own-password")
    page = admin.get("/accounts/new").get_data(as_text=True)
    assert f'<option value="{primary.id}">Alice (alice@example.test)</option>' in page
    values = {
        "name": "Sales",
        "address": "sales@example.test",
        "username": "sales",
        "password": "",
        "primary_account_id": str(primary.id),
        "login_format": "dovecot",
        "incoming_host": "127.0.0.1",
        "incoming_port": str(dovecot.imaps_port),
        "send": "0",
        "tls_verify": "custom",
        "ca_cert_pem": primary.ca_cert_pem,
        "timeout": "5",
    }
    answer = admin.post("/accounts/new", data=submit(page, values))
    assert answer.status_code == 302, html.unescape(answer.get_data(as_text=True))
    shared = accounts.get("Sales")
    assert shared.is_shared and accounts.incoming_auth(shared).username == "sales*alice"
    shown = admin.get(f"/accounts/{shared.id}").get_data(as_text=True)
    assert "reached with the login of" in shown and "Dovecot master user" in shown
    assert "Sales" in admin.get(f"/accounts/{primary.id}").get_data(as_text=True)


def test_after_a_failed_save_the_typed_password_is_kept_sealed_and_the_test_is_recorded(
    admin: FlaskClient, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user
) -> None:
    # An uploaded CA is used even when the verification was left on "System CAs".
    upload = (io.BytesIO(pki.ca_pem.read_bytes()), "ca.pem")
    values = {**_values(dovecot, smtp, tls_verify="system", incoming_port="1"), "ca_cert_file": upload}
    refused = _post(admin, "/accounts/new", "/accounts/new", values)
    page = refused.get_data(as_text=True)
    assert "refused the connection" in html.unescape(page) and "alice-mail-pw" not in page
    assert 'name="password_token"' in page and "kept (encrypted)" in page
    # Fixed port, password not typed again: the kept one is used, the test passes, and it is recorded.
    data = submit(page, {"incoming_port": str(dovecot.imaps_port), "password": ""})
    saved = admin.post("/accounts/new", data=data, content_type="multipart/form-data")
    assert saved.status_code == 302, html.unescape(saved.get_data(as_text=True))
    account = accounts.get("Work")
    assert account.tls_verify == "custom" and accounts.incoming_auth(account).password == "alice-mail-pw"
    assert account.last_test_incoming_ok is True and account.last_test_outgoing_ok is True
    assert "never tested" not in admin.get(f"/accounts/{account.id}").get_data(as_text=True)


def test_a_relay_without_login_is_no_primary_account(admin: FlaskClient, smtp: SmtpServer, make_account) -> None:
    relay = make_account(name="Relay", incoming_host="", password=None, smtp_auth="none", tls_verify="system")
    page = admin.get("/accounts/new").get_data(as_text=True)
    assert f'<option value="{relay.id}">' not in page
