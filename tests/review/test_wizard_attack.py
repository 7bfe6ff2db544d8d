"""Attack probes of the setup wizard, Manual settings' Test/folder picker, shared mailboxes and the
send-only/receive-only guards (independent review). The first part failed before its fix; the last part
("held") passed from the start and is kept as regression checks."""

from __future__ import annotations

import html
import io
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.formpage import submit
from tests.review.helpers import client_as
from tests.servers.dovecot import Dovecot
from tests.servers.smtp import SmtpServer
from webapp.services.account import accounts
from webapp.services.account.accounts import AccountSettings
from webapp.services.errors import ConnectorError

WIZARD = "/accounts/setup/"


class FakeImap:
    """A hostile IMAP server on loopback (plain text): it records every LOGIN it is sent."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(5)
        self.port = self.sock.getsockname()[1]
        self.logins: list[str] = []
        self._stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            conn.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
            buffer = b""
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buffer += data
                while b"\r\n" in buffer:
                    line, buffer = buffer.split(b"\r\n", 1)
                    tag, _, rest = line.decode("latin-1").partition(" ")
                    if rest.upper().startswith("LOGIN"):
                        self.logins.append(rest)
                        conn.sendall(f"{tag} NO [AUTHENTICATIONFAILED] no\r\n".encode())
                    elif rest.upper().startswith("CAPABILITY"):
                        conn.sendall(f"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n".encode())
                    elif rest.upper().startswith("LOGOUT"):
                        conn.sendall(f"* BYE\r\n{tag} OK bye\r\n".encode())
                        return
                    else:
                        conn.sendall(f"{tag} BAD what\r\n".encode())
        except OSError:
            return
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop = True
        self.thread.join(2)
        self.sock.close()


@pytest.fixture
def fake_imap() -> Iterator[FakeImap]:
    server = FakeImap()
    yield server
    server.stop()


@pytest.fixture
def admin(app: Flask, make_user) -> FlaskClient:
    make_user("boss", role="admin")
    return client_as(app, "boss")


def _token(client: FlaskClient, page: str = WIZARD) -> str:
    return submit(client.get(page).get_data(as_text=True))["csrf_token"]


# --- 1. a stored password goes to a host typed in the form -----------------------------------------------


def test_edit_form_test_does_not_send_the_stored_password_to_a_new_host(admin, make_account, fake_imap) -> None:
    """The edit form's Test with another incoming host and no password typed logs in there with the
    account's stored password: an admin (or anyone with an admin's session for a minute) reads it off the
    wire. Peers (GitLab integrations, Grafana data sources since 2023) clear or ask again for a stored
    secret when the address it is sent to changes."""
    account = make_account()
    page = admin.get(f"/accounts/{account.id}/edit").get_data(as_text=True)
    data = submit(
        page,
        {
            "incoming_host": "127.0.0.1",
            "incoming_port": str(fake_imap.port),
            "incoming_security": "none",
            "password": "",
        },
    )
    admin.post(f"/accounts/{account.id}/test-settings", data=data, headers={"HX-Request": "true"})
    admin.post(f"/accounts/{account.id}/form-folders", data=data, headers={"HX-Request": "true"})
    admin.post(f"/accounts/{account.id}/edit", data=data)  # Save (tests first) does the same
    assert not any("alice-mail-pw" in login for login in fake_imap.logins), fake_imap.logins


def test_a_new_shared_mailbox_cannot_carry_its_primarys_password_anywhere(admin, make_account, fake_imap) -> None:
    """The wizard (and Manual settings) let a shared mailbox be put on any host: its Test logs in there with
    the primary account's stored password, which no page ever shows."""
    primary = make_account()
    token = _token(admin)
    admin.post(
        WIZARD,
        data={
            "csrf_token": token,
            "at": "4",
            "go": "test",
            "address": "shared@example.test",
            "mailbox_kind": "shared",
            "primary_account_id": str(primary.id),
            "login_format": "plain",
            "receive": "1",
            "send": "0",
            "username": "shared",
            "incoming_protocol": "imap",
            "incoming_security": "none",
            "incoming_host": "127.0.0.1",
            "incoming_port": str(fake_imap.port),
            "tls_verify": "off",
        },
    )
    assert not any("alice-mail-pw" in login for login in fake_imap.logins), fake_imap.logins


# --- 2. tampered hidden inputs ---------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["found", "problems"])
def test_deeply_nested_json_in_a_hidden_input_is_no_500(admin, field: str) -> None:
    """``json.loads`` raises RecursionError (not ValueError) on deep nesting: WizardState.suggestions and
    problem_list let it through."""
    answer = admin.post(
        WIZARD,
        data={"csrf_token": _token(admin), "at": "3", "go": "choose", field: "[" * 100_000},
    )
    assert answer.status_code == 200


# --- 3. CA certificates that are not what they claim -----------------------------------------------------


def test_a_binary_ca_upload_with_the_marker_is_refused_cleanly(admin, dovecot: Dovecot, smtp: SmtpServer) -> None:
    """Bytes beyond ASCII are decoded with "replace" (U+FFFD): ssl then raises TypeError("cadata should be an
    ASCII string"), which network.tls_context does not catch."""
    blob = b"-----BEGIN CERTIFICATE-----\n\xff\xfe\x00garbage\n-----END CERTIFICATE-----\n"
    page = admin.get("/accounts/new").get_data(as_text=True)
    data = submit(
        page,
        {
            "name": "Work",
            "address": "alice@example.test",
            "username": "alice",
            "password": "pw",
            "incoming_host": "127.0.0.1",
            "incoming_port": str(dovecot.imaps_port),
            "outgoing_host": "127.0.0.1",
            "outgoing_port": str(smtp.port),
            "tls_verify": "custom",
            "timeout": "5",
            "ca_cert_file": (io.BytesIO(blob), "ca.pem"),
        },
    )
    answer = admin.post("/accounts/test-settings", data=data, content_type="multipart/form-data")
    assert answer.status_code == 200
    text = html.unescape(answer.get_data(as_text=True))
    assert "CA certificate" in text


def test_a_pasted_ca_with_non_ascii_is_refused_cleanly(admin, dovecot: Dovecot, smtp: SmtpServer) -> None:
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\u00c4\n-----END CERTIFICATE-----\n"
    token = _token(admin)
    answer = admin.post(
        WIZARD,
        data={
            "csrf_token": token,
            "at": "4",
            "go": "test",
            "address": "alice@example.test",
            "password_token": "",
            "receive": "0",
            "send": "1",
            "smtp_auth": "none",
            "outgoing_host": "127.0.0.1",
            "outgoing_port": str(smtp.port),
            "outgoing_security": "starttls",
            "tls_verify": "custom",
            "ca_cert_pem": pem,
        },
    )
    assert answer.status_code == 200


def test_a_ca_with_nul_is_refused_before_the_database(admin, smtp: SmtpServer) -> None:
    """validate() checks every text field for NUL but ca_cert_pem: PostgreSQL refuses NUL in text (a 500 on
    Save anyway); SQLite stores it."""
    pem = "-----BEGIN CERTIFICATE-----\nMIIB\x00\n-----END CERTIFICATE-----\n"
    answer = admin.post(
        WIZARD,
        data={
            "csrf_token": _token(admin),
            "at": "4",
            "go": "save-anyway",
            "address": "alice@example.test",
            "receive": "0",
            "send": "1",
            "smtp_auth": "none",
            "outgoing_host": "127.0.0.1",
            "outgoing_port": str(smtp.port),
            "tls_verify": "custom",
            "ca_cert_pem": pem,
        },
    )
    assert answer.status_code in (200, 204, 302)
    for account in accounts.all_accounts():
        assert "\x00" not in (account.ca_cert_pem or "")


# --- 4. ids beyond a 32-bit integer (PostgreSQL: email_account.id is INTEGER, MAX_ID is 2**63 - 1) -------


def test_an_id_beyond_int4_names_no_account(admin, make_account) -> None:
    """accounts.by_id lets ids up to MAX_ID (2**63 - 1) through to the query; PostgreSQL refuses to compare an
    INTEGER column with 3000000000 ("integer out of range"): a 500 instead of "no such account"."""
    make_account()
    failures = []
    for url in ("/accounts/3000000000", "/accounts/3000000000/edit", "/messages/3000000000"):
        status = admin.get(url).status_code
        if status != 404:
            failures.append((url, status))
    answer = admin.post(
        WIZARD,
        data={
            "csrf_token": _token(admin),
            "at": "2",
            "go": "3",
            "address": "shared@example.test",
            "mailbox_kind": "shared",
            "primary_account_id": "3000000000",
            "login_format": "exchange",
        },
    )
    if answer.status_code != 200:
        failures.append((WIZARD, answer.status_code))
    assert not failures, failures


# --- 5. the configuration's range checks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AUTOCONFIG_TIMEOUT_SECONDS", "nan"),  # not JSON: float("nan"); NaN < 0 and NaN == 0 are both False
        ("SUBSCRIPTION_CHECK_SECONDS", "NaN"),  # JSON NaN
        ("SUBSCRIPTION_BACKOFF_MAX_SECONDS", "Infinity"),  # socket.settimeout/time.sleep: OverflowError
        ("SESSION_IDLE_SECONDS", "1000000000000000"),  # timedelta(seconds=...) overflows at every request
        ("PERMANENT_SESSION_LIFETIME", "1000000000000000"),
    ],
)
def test_a_setting_that_is_no_finite_usable_number_stops_the_app(
    migrated: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    from webapp import create_app
    from webapp.config import ConfigError

    monkeypatch.setenv(f"EMAILCONNECTOR_{name}", value)
    with pytest.raises(ConfigError, match=f"EMAILCONNECTOR_{name}"):
        create_app(dict(migrated))


# --- 6. a subscribed account made send-only --------------------------------------------------------------


def test_a_subscribed_account_made_send_only_is_unsubscribed(app: Flask, make_account) -> None:
    """subscriptions.settings_changed stops a subscription whose account now receives with POP3, but one whose
    account is now send-only stays active ("connecting again"): the subscriber then fails on
    require_receiving until it gives up, and the page says it is subscribed."""
    from dataclasses import replace

    from webapp.services.receiving import subscriptions

    account = make_account()
    subscriptions.subscribe(account)
    accounts.update(account, replace(accounts.settings_of(account), incoming_host=""))
    subscriptions.settings_changed(account)
    subscription = subscriptions.of(account)
    assert subscription is not None and not subscription.active, subscription.state_comment


# --- held: attacks that found nothing -------------------------------------------------------------------


def test_every_new_route_is_for_admins_only(app: Flask, make_user, make_account) -> None:
    account = make_account()
    reader = make_user("reader")
    from webapp.services.identity import users

    users.grant(reader, account, read=True, send=True)
    client = client_as(app, "reader")
    token = _token(client, "/")
    assert client.get(WIZARD).status_code == 403
    for url in (
        WIZARD,
        "/accounts/test-settings",
        f"/accounts/{account.id}/test-settings",
        "/accounts/form-folders",
        f"/accounts/{account.id}/form-folders",
    ):
        assert client.post(url, data={"csrf_token": token}).status_code == 403, url


def test_the_wizard_needs_the_csrf_token(admin: FlaskClient) -> None:
    answer = admin.post(WIZARD, data={"at": "1", "go": "2", "address": "jo@example.org"})
    assert answer.status_code == 400


def test_hostile_suggestions_and_problems_are_escaped(admin: FlaskClient) -> None:
    evil = "<img src=x onerror=alert(1)>\"'"
    found = (
        '[{"source": "' + evil.replace('"', '\\"') + '", "origin": "o", "name": "' + evil.replace('"', '\\"') + '",'
        ' "incoming": {"protocol": "imap", "host": "h<script>", "port": 993, "security": "tls", "username": "u"},'
        ' "outgoing": null, "notes": ["' + evil.replace('"', '\\"') + '"]}]'
    )
    answer = admin.post(
        WIZARD,
        data={
            "csrf_token": _token(admin),
            "at": "3",
            "go": "choose",
            "address": "jo@example.org",
            "found": found,
            "problems": '["<script>alert(2)</script>"]',
            "choice": "0",
        },
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert "<img src=x" not in page and "<script>alert" not in page and "h<script>" not in page


@pytest.mark.parametrize("choice", ["-1", "999", "99999999999999999999", "\uff11", "1e3", ""])
def test_a_choice_out_of_range_is_no_500(admin: FlaskClient, choice: str) -> None:
    found = (
        '[{"source": "preset", "origin": "o", "name": "N", "incoming": {"protocol": "imap", "host": "h", '
        '"port": 993, "security": "tls", "username": ""}, "outgoing": null}]'
    )
    for go in ("choose", "3"):
        answer = admin.post(
            WIZARD,
            data={"csrf_token": _token(admin), "at": "3", "go": go, "found": found, "choice": choice},
        )
        assert answer.status_code == 200


@pytest.mark.parametrize("primary", ["0", "-1", "9223372036854775808", "1" * 5000, "", "x", "1\x00"])
def test_a_hostile_primary_account_id_is_refused(admin: FlaskClient, make_account, primary: str) -> None:
    make_account()
    for go in ("3", "save-anyway"):
        answer = admin.post(
            WIZARD,
            data={
                "csrf_token": _token(admin),
                "at": "2",
                "go": go,
                "address": "shared@example.test",
                "mailbox_kind": "shared",
                "primary_account_id": primary,
                "login_format": "exchange",
                "incoming_host": "127.0.0.1",
                "outgoing_host": "127.0.0.1",
            },
        )
        assert answer.status_code == 200
        assert "primary account: choose" in html.unescape(answer.get_data(as_text=True))
    assert len(accounts.all_accounts()) == 1


def test_a_shared_mailbox_cannot_be_a_primary_nor_make_a_cycle(app: Flask, make_account) -> None:
    primary = make_account(name="P")
    shared = make_account(name="S", password=None, primary_account_id=primary.id, login_format="dovecot")
    other = make_account(name="O")
    # a shared mailbox as a primary
    with pytest.raises(ConnectorError):
        make_account(name="T", password=None, primary_account_id=shared.id)
    # P made shared via S (a cycle), or via O (P has shared mailboxes)
    for target in (shared.id, other.id):
        settings = accounts.settings_of(primary)
        settings.primary_account_id = target
        with pytest.raises(ConnectorError):
            accounts.update(primary, settings)
    # S its own primary
    settings = accounts.settings_of(shared)
    settings.primary_account_id = shared.id
    with pytest.raises(ConnectorError):
        accounts.update(shared, settings)
    # removing P is refused while S uses it
    with pytest.raises(ConnectorError):
        accounts.remove(primary)
    assert isinstance(settings, AccountSettings)


@pytest.mark.parametrize("value", ["imap.example.org\r\nX: y", "imap.example.org\x00", "a" * 300, "\u2028x"])
def test_hostile_hosts_and_usernames_are_refused(admin: FlaskClient, value: str) -> None:
    for field in ("incoming_host", "outgoing_host", "username"):
        answer = admin.post(
            WIZARD,
            data={
                "csrf_token": _token(admin),
                "at": "3",
                "go": "4",
                "address": "jo@example.org",
                "password_token": "",
                "incoming_host": "imap.example.org",
                "outgoing_host": "smtp.example.org",
                field: value,
            },
        )
        assert answer.status_code == 200
        assert 'aria-current="step">Test and save' not in answer.get_data(as_text=True), (field, value)


def test_a_huge_ca_upload_is_refused(admin: FlaskClient, dovecot: Dovecot, smtp: SmtpServer) -> None:
    big = b"-----BEGIN CERTIFICATE-----\n" + b"A" * (70 * 1024)
    answer = admin.post(
        WIZARD,
        data={
            "csrf_token": _token(admin),
            "at": "3",
            "go": "4",
            "address": "jo@example.org",
            "ca_cert_file": (io.BytesIO(big), "ca.pem"),
        },
        content_type="multipart/form-data",
    )
    assert "at most 64 KiB" in html.unescape(answer.get_data(as_text=True))
