"""Attack probes of the setup wizard and Manual settings that held (independent review): kept as
regression checks. Each passes today."""

from __future__ import annotations

import html
import io

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


@pytest.fixture
def admin(app: Flask, make_user) -> FlaskClient:
    make_user("boss", role="admin")
    return client_as(app, "boss")


def _token(client: FlaskClient, page: str = WIZARD) -> str:
    return submit(client.get(page).get_data(as_text=True))["csrf_token"]


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
