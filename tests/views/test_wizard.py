"""The setup wizard through the app, submitted as a browser submits it: a preset domain, a domain found
through its own autoconfig file (served by the test kit), a send-only account on the kit's SMTP server,
a shared mailbox through a Dovecot master user — each then used to fetch and send — and every refusal."""

from __future__ import annotations

import html
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.formpage import submit
from tests.servers.dovecot import Dovecot
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from webapp import connector
from webapp.services.account import accounts
from webapp.services.outgoing.drafts import Draft
from webapp.services.receiving import fetching

WIZARD = "/accounts/setup/"
CONFIG_PATH = "/mail/config-v1.1.xml"


class Wizard:
    """One admin going through the wizard: each ``press`` posts the current page's form."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.page = client.get(WIZARD).get_data(as_text=True)

    def press(self, go: str, **changes: Any) -> str:
        answer = self.client.post(WIZARD, data=submit(self.page, changes, ("go", go)), headers={"HX-Request": "true"})
        assert answer.status_code in (200, 204), answer.status_code
        if answer.status_code == 204:
            return answer.headers["HX-Redirect"]
        # Each step is an entry of the browser's history (its Back returns to the step before).
        assert answer.headers["HX-Push-Url"].startswith(f"{WIZARD}?step=")
        self.page = answer.get_data(as_text=True)
        return self.page

    @property
    def text(self) -> str:
        return html.unescape(self.page)

    def step(self) -> str:
        marker = 'aria-current="step">'
        return self.page.split(marker, 1)[1].split("<", 1)[0]


@pytest.fixture
def admin(client: FlaskClient, make_user, login) -> FlaskClient:
    make_user("boss", role="admin")
    login("boss")
    return client


def _corp_file(imap_port: int, smtp_port: int) -> bytes:
    return f"""<?xml version="1.0"?>
<clientConfig version="1.1"><emailProvider id="corp.test"><displayName>Corp Mail</displayName>
<incomingServer type="imap"><hostname>imap.corp.test</hostname><port>{imap_port}</port><socketType>SSL</socketType>
<username>%EMAILLOCALPART%</username><authentication>password-cleartext</authentication></incomingServer>
<outgoingServer type="smtp"><hostname>smtp.corp.test</hostname><port>{smtp_port}</port>
<socketType>STARTTLS</socketType><username>%EMAILLOCALPART%</username>
<authentication>password-cleartext</authentication></outgoingServer></emailProvider></clientConfig>""".encode()


def test_a_fresh_install_welcomes_the_admin_and_lists_add_account(admin: FlaskClient, make_account) -> None:
    welcome = admin.get("/").get_data(as_text=True)
    assert "Welcome to Email Connector" in welcome and f'href="{WIZARD}">Get started' in welcome
    make_account()
    overview = admin.get("/").get_data(as_text=True)
    assert "Welcome" not in overview and f'href="{WIZARD}">Add account' in overview
    assert f'href="{WIZARD}">Add account' in admin.get("/accounts/").get_data(as_text=True)


def test_a_preset_domain_is_filled_in_with_its_source_and_back_keeps_every_answer(admin, discovery) -> None:
    wizard = Wizard(admin)
    assert wizard.step() == "Address and sign-in"
    assert 'value="oauth" disabled' in wizard.page  # shown, not usable yet
    wizard.press("2", address="jo@gmail.com")
    assert wizard.step() == "Mailbox"
    wizard.press("3", password="app-password-1234")
    assert "app-password-1234" not in wizard.page  # carried sealed, never written back
    assert wizard.step() == "Servers"
    assert 'value="imap.gmail.com"' in wizard.page and 'value="smtp.gmail.com"' in wizard.page
    assert "Filled in from Gmail / Google Workspace (built-in settings)" in wizard.text
    assert 'value="jo@gmail.com"' in wizard.page  # the login the preset names
    wizard.press("2")  # Back
    assert wizard.step() == "Mailbox" and "A password is set" in wizard.page
    wizard.press("1")
    assert 'value="jo@gmail.com"' in wizard.page
    wizard.press("2")
    wizard.press("3")  # the same address: the servers (and any change to them) stay
    wizard.press("4", incoming_host="imap.example.org")
    wizard.press("3")
    assert 'value="imap.example.org"' in wizard.page
    assert accounts.all_accounts() == []  # nothing saved on the way


def test_a_domain_found_by_its_own_file_is_tested_saved_and_used(
    admin, discovery, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user
) -> None:
    dns, web = discovery
    dns.add("autoconfig.corp.test", "A", "127.0.0.1")
    web.put("autoconfig.corp.test", CONFIG_PATH, _corp_file(dovecot.imaps_port, smtp.port))
    wizard = Wizard(admin)
    wizard.press("2", address="alice@corp.test")
    wizard.press("3", password="alice-mail-pw")
    assert "Filled in from Corp Mail (the domain&#39;s configuration file)" in wizard.page
    assert 'value="imap.corp.test"' in wizard.page and f'value="{dovecot.imaps_port}"' in wizard.page
    assert 'value="alice"' in wizard.page  # %EMAILLOCALPART%
    # The kit's names resolve only in its own DNS: the admin types the address this machine reaches.
    wizard.press(
        "4",
        incoming_host="127.0.0.1",
        outgoing_host="127.0.0.1",
        tls_verify="custom",
        ca_cert_pem=pki.ca_pem.read_text(),
    )
    assert wizard.step() == "Test and save"
    wizard.press("test")
    assert "IMAP login OK" in wizard.text and "SMTP login OK" in wizard.text
    assert wizard.text.count("✔") == 2, wizard.text
    target = wizard.press("save", name="Corp")
    account = accounts.get("Corp")
    assert target == f"/accounts/{account.id}"
    assert (account.username, account.incoming_host, account.outgoing_port) == ("alice", "127.0.0.1", smtp.port)
    dovecot.deliver("alice", b"From: a@b.test\r\nTo: alice@corp.test\r\nSubject: found\r\n\r\nhi\r\n")
    assert fetching.fetch(account).stored == 1
    connector.send_email(account, Draft(to="bob@example.test", subject="from the wizard", text="hi"))
    assert smtp.received[-1].authenticated_as == "alice"


def test_save_tests_first_and_offers_save_anyway(admin, discovery, dovecot: Dovecot, smtp: SmtpServer, pki) -> None:
    dovecot.add_user("carol", "carol-pw")
    wizard = Wizard(admin)
    wizard.press("2", address="carol@localhost")
    wizard.press("3", password="wrong-password")
    assert "Nothing was found for localhost" in wizard.text  # and the wizard goes on: typed by hand
    wizard.press(
        "4",
        username="carol",
        incoming_host="127.0.0.1",
        incoming_port=str(dovecot.imaps_port),
        outgoing_host="127.0.0.1",
        outgoing_port=str(smtp.port),
        tls_verify="custom",
        ca_cert_pem=pki.ca_pem.read_text(),
    )
    wizard.press("save")
    assert "Incoming server: authentication failed" in wizard.text and "wrong-password" not in wizard.page
    assert 'value="save-anyway"' in wizard.page and accounts.all_accounts() == []
    assert "The server refused the login: check the password" in wizard.text
    wizard.press("2")  # Change the password
    wizard.press("3", password="carol-pw")
    wizard.press("4")
    assert wizard.press("save").startswith("/accounts/")
    assert accounts.incoming_auth(accounts.get("carol@localhost")).password == "carol-pw"


def test_a_send_only_account_on_the_kits_smtp_server(admin, discovery, smtp: SmtpServer, mail_user, pki) -> None:
    wizard = Wizard(admin)
    wizard.press("2", address="dev@localhost")
    wizard.press("3", password="alice-mail-pw")
    wizard.press(
        "4",
        receive="0",
        username="alice",
        outgoing_host="127.0.0.1",
        outgoing_port=str(smtp.port),
        outgoing_security="starttls",
        tls_verify="custom",
        ca_cert_pem=pki.ca_pem.read_text(),
    )
    assert "off: send-only" in wizard.page
    wizard.press("save", name="Relay")
    account = accounts.get("Relay")
    assert (account.receives, account.sends) == (False, True)
    assert connector.test_connection(account).incoming.used is False
    connector.send_email(account, Draft(to="bob@example.test", subject="relay", text="hi"))
    assert smtp.received[-1].mail_from == "dev@localhost"
    with pytest.raises(Exception, match="send-only: it has no incoming server"):
        connector.retrieve_email_messages(account)
    page = admin.get(f"/accounts/{account.id}").get_data(as_text=True)
    assert "none: the account is send-only" in page and "Subscribe to incoming emails" not in page
    mailbox = admin.get(f"/accounts/{account.id}/mailbox")
    assert mailbox.status_code == 200 and "New Email" in mailbox.get_data(as_text=True)
    assert "Fetch Emails" not in mailbox.get_data(as_text=True)


def test_a_shared_mailbox_through_a_dovecot_master_user(
    admin, discovery, dovecot: Dovecot, smtp: SmtpServer, make_account
) -> None:
    primary = make_account(name="Alice")
    dovecot.add_master("alice", "alice-mail-pw")  # the primary's login may open other mailboxes
    dovecot.add_user("sales", "sales-own-password")
    wizard = Wizard(admin)
    wizard.press("2", address="sales@example.test")
    wizard.press("3", mailbox_kind="shared", primary_account_id=str(primary.id), login_format="dovecot")
    assert "Filled in from Alice (the primary account)" in wizard.text
    assert 'value="127.0.0.1"' in wizard.page and f'value="{dovecot.imaps_port}"' in wizard.page
    wizard.press("4", username="sales", tls_verify="custom", ca_cert_pem=primary.ca_cert_pem)
    wizard.press("save", name="Sales")
    shared = accounts.get("Sales")
    assert shared.is_shared and shared.password_encrypted is None
    assert accounts.incoming_auth(shared).username == "sales*alice"
    dovecot.deliver("sales", b"From: c@d.test\r\nTo: sales@example.test\r\nSubject: for sales\r\n\r\nhi\r\n")
    dovecot.deliver("alice", b"From: c@d.test\r\nTo: alice@example.test\r\nSubject: for alice\r\n\r\nhi\r\n")
    assert fetching.fetch(shared).stored == 1  # sales's mailbox, not alice's
    connector.send_email(shared, Draft(to="bob@example.test", subject="from sales", text="hi"))
    sent = smtp.received[-1]
    assert (sent.mail_from, sent.authenticated_as) == ("sales@example.test", "alice")
    # The primary cannot go while a shared mailbox logs in with it.
    confirm = admin.get(f"/accounts/{primary.id}/delete").get_data(as_text=True)
    refused = admin.post(f"/accounts/{primary.id}/delete", data=submit(confirm), follow_redirects=True)
    assert "Alice is the primary account of Sales" in html.unescape(refused.get_data(as_text=True))
    assert accounts.find("Alice") is not None


@pytest.mark.parametrize(
    ("at", "changes", "expected"),
    [
        ("2", {"address": "not an address"}, "is not an email address"),
        ("3", {"password": ""}, None),  # a password may wait: step 3 knows whether one is needed
        ("4", {"receive": "0", "send": "0"}, "switch on receiving, sending or both"),
        ("4", {"incoming_host": ""}, "incoming server: required (or switch it off)"),
        ("4", {"incoming_port": "99999"}, "incoming port: 1 to 65535"),
        ("4", {"incoming_port": "\uff19\uff19\uff13"}, "is not a port number"),  # fullwidth 993
        ("4", {"incoming_host": "imap.example.org\r\nX: y"}, "line breaks and NUL are not allowed"),
    ],
)
def test_each_step_is_checked_before_the_next(admin, discovery, at: str, changes: dict[str, str], expected) -> None:
    wizard = Wizard(admin)
    steps = {"2": {"address": "jo@gmail.com"}, "3": {"password": "pw"}, "4": {}}
    for go, values in steps.items():
        wizard.press(go, **(changes if go == at else values))
        if go == at:
            break
    if expected is None:
        return
    assert expected in wizard.text
    assert wizard.step() == {"2": "Address and sign-in", "3": "Mailbox", "4": "Servers"}[at]


def test_a_tampered_page_cannot_skip_a_step_or_pass_off_a_token(admin, discovery, make_account) -> None:
    account = make_account()
    token = submit(admin.get(WIZARD).get_data(as_text=True))["csrf_token"]
    jumped = admin.post(WIZARD, data={"csrf_token": token, "at": "1", "go": "save", "address": "jo@gmail.com"})
    page = html.unescape(jumped.get_data(as_text=True))
    assert "incoming server: required" in page and 'aria-current="step">Servers' in page
    # A stored password's token is not a wizard token: it opens nothing.
    stolen = account.password_encrypted
    answer = admin.post(
        WIZARD,
        data={
            "csrf_token": token,
            "at": "4",
            "go": "save-anyway",
            "address": "jo@gmail.com",
            "password_token": stolen,
            "incoming_host": "imap.gmail.com",
            "outgoing_host": "smtp.gmail.com",
        },
    )
    assert "password: type it again" in html.unescape(answer.get_data(as_text=True))
    assert [a.name for a in accounts.all_accounts()] == ["Work"]
    # Hostile suggestions carried in the page fill nothing.
    answer = admin.post(WIZARD, data={"csrf_token": token, "at": "3", "go": "choose", "found": '[{"x": 1}]'})
    assert answer.status_code == 200


def test_only_admins_reach_the_wizard(client: FlaskClient, make_user, login) -> None:
    make_user("jo")
    login("jo")
    assert client.get(WIZARD).status_code == 403
    assert client.post(WIZARD, data={}).status_code in (400, 403)


def test_a_password_token_is_good_for_its_admin_only(admin: FlaskClient, make_user, login, discovery) -> None:
    wizard = Wizard(admin)
    wizard.press("2", address="jo@gmail.com")
    wizard.press("3", password="app-password-1234")
    page = wizard.page
    token = submit(page)["password_token"][0]
    assert token and "app-password-1234" not in page
    make_user("other", role="admin")
    admin.post("/logout", data={"csrf_token": submit(admin.get("/").get_data(as_text=True))["csrf_token"][0]})
    login("other")
    fresh = admin.get(WIZARD).get_data(as_text=True)
    stolen = submit(page, {"csrf_token": submit(fresh)["csrf_token"][0]}, ("go", "save-anyway"))
    answer = html.unescape(admin.post(WIZARD, data=stolen).get_data(as_text=True))
    assert "password: type it again" in answer
    assert accounts.all_accounts() == []
