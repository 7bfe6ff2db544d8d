"""In Chromium, the setup wizard as a new admin walks it: a preset domain; a domain found only through its
own autoconfig file (served by the test kit), on a phone; a send-only account on the kit's SMTP server; a
shared mailbox through the kit's Dovecot master user — then each sends and fetches from the pages. Every
step fits 390 px and 1280 px, and Manual settings' port follows the security choice."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect

from tests.browser.conftest import serve
from tests.browser.test_layout import DESKTOP, PHONE, Session
from tests.servers.dnsserver import DnsServer
from tests.servers.dovecot import Dovecot
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from tests.servers.webfiles import WebFiles
from webapp.extensions import db
from webapp.services.account import accounts

PASSWORD = "browser password 1"
CONFIG_PATH = "/mail/config-v1.1.xml"


@pytest.fixture
def wizard_server(app: Flask, make_app: Any, discovery: tuple[DnsServer, WebFiles]) -> Iterator[str]:
    """The app served for the browser, its discovery asking the test kit's DNS and HTTPS servers."""
    yield from serve(make_app(**{k: v for k, v in app.config.items() if k.startswith("AUTOCONFIG_")}))


@pytest.fixture
def admin_session(browser: Any, wizard_server: str, make_user) -> Iterator[Any]:
    made: list[Session] = []
    make_user("boss", PASSWORD, role="admin")

    def start(size: dict[str, int]) -> Session:
        session = Session(browser, wizard_server, size)
        session.login("boss")
        made.append(session)
        return session

    yield start
    for session in made:
        session.close()


def _saved(name: str) -> Any:
    """The account the browser saved (a new transaction: the test's last one may be an older snapshot)."""
    db.session.rollback()
    return accounts.get(name)


def _fits(session: Session, size: dict[str, int], problems: list[str | None]) -> None:
    problems.append(session.overflow(size["width"]))


def _next(page: Any) -> None:
    page.get_by_role("button", name="Next").click()


def _step(page: Any, title: str) -> None:
    expect(page.locator('ol.steps li[aria-current="step"]')).to_have_text(title)


def _send_and_fetch(page: Any, account_id: int, expect_sent_text: str) -> None:
    page.goto(f"/accounts/{account_id}/mailbox")
    page.get_by_role("link", name="New Email").click()
    page.get_by_label("To", exact=True).fill("bob@example.test")
    page.get_by_label("Subject").fill(expect_sent_text)
    page.get_by_label("Text").fill("sent from a wizard-made account")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".flash.success")).to_contain_text(f"Sent: {expect_sent_text}")


def _fetch(page: Any, account_id: int, expected: str) -> None:
    page.goto(f"/accounts/{account_id}/mailbox")
    page.get_by_role("button", name="Fetch Emails").click()  # the worker process runs the job
    expect(page.locator("#fetch")).to_contain_text("Fetched: 1 new", timeout=60_000)
    expect(page.locator("#messages")).to_contain_text(expected)


def test_a_preset_domain_and_a_domain_file_on_a_phone_then_send_and_fetch(
    admin_session, discovery, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user, worker, tmp_path: Path
) -> None:
    dns, web = discovery
    dns.add("autoconfig.corp.test", "A", "127.0.0.1")
    web.put(
        "autoconfig.corp.test",
        CONFIG_PATH,
        f"""<?xml version="1.0"?><clientConfig version="1.1"><emailProvider id="corp.test">
<displayName>Corp Mail</displayName><incomingServer type="imap"><hostname>imap.corp.test</hostname>
<port>{dovecot.imaps_port}</port><socketType>SSL</socketType><username>%EMAILLOCALPART%</username>
</incomingServer><outgoingServer type="smtp"><hostname>smtp.corp.test</hostname><port>{smtp.port}</port>
<socketType>STARTTLS</socketType><username>%EMAILLOCALPART%</username></outgoingServer>
</emailProvider></clientConfig>""".encode(),
    )
    ca_file = tmp_path / "kit-ca.pem"
    ca_file.write_bytes(pki.ca_pem.read_bytes())
    session = admin_session(PHONE)
    page, problems = session.page, []
    page.goto("/")
    expect(page.get_by_role("heading", name="Welcome to Email Connector")).to_be_visible()
    _fits(session, PHONE, problems)

    # A preset: filled in from the built-in settings, without a network lookup of its own.
    page.get_by_role("link", name="Get started").click()
    _step(page, "Address and sign-in")
    _fits(session, PHONE, problems)
    expect(page.get_by_label("Microsoft Entra ID (OAuth 2.0)")).to_be_disabled()
    page.get_by_label("Email address").fill("jo@gmail.com")
    _next(page)
    _step(page, "Mailbox")
    _fits(session, PHONE, problems)
    page.get_by_label("Password", exact=True).fill("an app password")
    _next(page)
    _step(page, "Servers")
    _fits(session, PHONE, problems)
    expect(page.get_by_label("Server", exact=True)).to_have_value("imap.gmail.com")
    expect(page.locator("small.source").first).to_contain_text("Gmail / Google Workspace (built-in settings)")
    page.go_back()  # the browser's Back: the step before, not the page before the wizard
    _step(page, "Mailbox")
    page.go_forward()
    _step(page, "Servers")
    page.get_by_role("button", name="Back").click()
    _step(page, "Mailbox")  # the step is swapped in before the next click (a quicker one hits the old Back)
    page.get_by_role("button", name="Back").click()
    _step(page, "Address and sign-in")
    expect(page.get_by_label("Email address")).to_have_value("jo@gmail.com")

    # A domain known only through its own autoconfig file: found, corrected where the kit needs it, tested.
    page.get_by_label("Email address").fill("alice@corp.test")
    _next(page)
    page.get_by_label("Password", exact=True).fill("alice-mail-pw")
    _next(page)
    _step(page, "Servers")
    expect(page.locator("small.source").first).to_contain_text("Corp Mail (the domain's configuration file)")
    expect(page.get_by_label("Login name")).to_have_value("alice")
    # The kit's names resolve only in its own DNS: the admin types the address this machine reaches.
    page.get_by_label("Server", exact=True).fill("127.0.0.1")
    page.get_by_label("SMTP server").fill("127.0.0.1")
    page.locator("summary", has_text="Advanced: certificates").click()
    page.get_by_label("TLS certificate verification").select_option("custom")
    page.get_by_label("Custom CA certificate: upload a PEM file…").set_input_files(str(ca_file))
    expect(page.get_by_label("…or paste it")).to_have_value(re.compile("BEGIN CERTIFICATE"))  # read into the box
    _fits(session, PHONE, problems)
    _next(page)
    _step(page, "Test and save")
    _fits(session, PHONE, problems)
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result .check.ok")).to_have_count(2)
    page.get_by_label("Account name").fill("Corp")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_contain_text("Account Corp added. Its connection was tested")
    _fits(session, PHONE, problems)
    account = _saved("Corp")
    _send_and_fetch(page, account.id, "Corp wizard")
    assert smtp.received[-1].authenticated_as == "alice"
    dovecot.deliver("alice", b"From: c@d.test\r\nTo: alice@corp.test\r\nSubject: to corp\r\n\r\nhi\r\n")
    _fetch(page, account.id, "to corp")
    assert [p for p in problems if p] == []
    assert session.violations == [] and session.foreign == []


def test_a_send_only_relay_and_a_shared_mailbox_then_send_and_fetch(
    admin_session, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, make_account, worker
) -> None:
    primary = make_account(name="Alice")
    dovecot.add_master("alice", "alice-mail-pw")
    dovecot.add_user("sales", "sales-own-password")
    session = admin_session(DESKTOP)
    page, problems = session.page, []

    # Send-only: receiving switched off, SMTP typed by hand (nothing is found for localhost).
    page.goto("/")
    page.get_by_role("link", name="Add account").click()
    page.get_by_label("Email address").fill("dev@localhost")
    _next(page)
    page.get_by_label("Password", exact=True).fill("alice-mail-pw")
    _next(page)
    _step(page, "Servers")
    expect(page.locator(".notice")).to_contain_text("Nothing was found for localhost")
    page.get_by_label("Receive emails").uncheck()
    page.get_by_label("Login name").fill("alice")
    page.get_by_label("SMTP server").fill("127.0.0.1")
    page.get_by_label("Port").nth(1).fill(str(smtp.port))
    page.locator("summary", has_text="Advanced: certificates").click()
    page.get_by_label("TLS certificate verification").select_option("custom")
    page.get_by_label("…or paste it").fill(pki.ca_pem.read_text())
    _fits(session, DESKTOP, problems)
    _next(page)
    expect(page.locator("dl.summary")).to_contain_text("off: send-only")
    page.get_by_label("Account name").fill("Relay")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_contain_text("Account Relay added")
    expect(page.locator("dl.props").first).to_contain_text("none: the account is send-only")
    relay = _saved("Relay")
    _send_and_fetch(page, relay.id, "Relay wizard")
    assert smtp.received[-1].mail_from == "dev@localhost"
    expect(page.get_by_role("button", name="Fetch Emails")).to_have_count(0)

    # A shared mailbox: the primary's servers and certificates, the Dovecot master-user login.
    page.goto("/accounts/setup/")
    page.get_by_label("Email address").fill("sales@example.test")
    _next(page)
    page.get_by_label("A shared mailbox, reached with the login of an account added before").check()
    page.get_by_label("Primary account", exact=True).select_option(str(primary.id))
    page.get_by_label("How the server takes a shared-mailbox login").select_option("dovecot")
    _fits(session, DESKTOP, problems)
    _next(page)
    expect(page.locator("small.source").first).to_contain_text("Alice (the primary account)")
    page.get_by_label("Shared mailbox login name").fill("sales")
    _next(page)
    page.get_by_label("Account name").fill("Sales")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_contain_text("Account Sales added. Its connection was tested")
    shared = _saved("Sales")
    _send_and_fetch(page, shared.id, "Sales wizard")
    assert (smtp.received[-1].mail_from, smtp.received[-1].authenticated_as) == ("sales@example.test", "alice")
    dovecot.deliver("sales", b"From: c@d.test\r\nTo: sales@example.test\r\nSubject: to sales\r\n\r\nhi\r\n")
    _fetch(page, shared.id, "to sales")
    assert [p for p in problems if p] == []
    assert session.violations == [] and session.foreign == []


def test_manual_settings_port_follows_security_and_a_typed_port_stays(admin_session) -> None:
    session = admin_session(DESKTOP)
    page = session.page
    page.goto("/accounts/new")
    incoming_port = page.get_by_label("Incoming port")
    incoming_security = page.get_by_label("Incoming security")
    incoming_security.select_option("tls")
    expect(incoming_port).to_have_value("993")
    incoming_security.select_option("starttls")
    expect(incoming_port).to_have_value("143")
    page.get_by_label("Incoming protocol").select_option("pop3")
    expect(incoming_port).to_have_value("110")
    outgoing_security = page.get_by_label("Outgoing security")
    outgoing_security.select_option("tls")
    expect(page.get_by_label("Outgoing port")).to_have_value("465")
    incoming_port.fill("1995")  # typed by hand: it stays
    incoming_security.select_option("tls")
    expect(incoming_port).to_have_value("1995")
    assert session.overflow(DESKTOP["width"]) is None
    assert session.violations == []
