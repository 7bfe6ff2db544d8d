"""In Chromium: setup token → first admin → login → account → test connection → user → grant → login."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.servers.dovecot import Dovecot
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from webapp.services.identity import setup

ADMIN_PW = "admin password 1"
BOB_PW = "bob password 12"


def _login(page: Any, username: str, password: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_first_run_to_a_granted_user(
    page: Any, dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user: tuple[str, str]
) -> None:
    token = setup.issue_token()
    page.goto("/")
    expect(page).to_have_url(f"{page.url.split('/setup')[0]}/setup")
    page.get_by_label("Setup token").fill(token)
    page.get_by_label("Admin username").fill("admin")
    page.get_by_label("Password", exact=True).fill(ADMIN_PW)
    page.get_by_label("Repeat password").fill(ADMIN_PW)
    page.get_by_role("button", name="Create admin").click()
    expect(page.get_by_text("You are the admin")).to_be_visible()

    page.get_by_role("button", name="Log out admin").click()
    _login(page, "admin", ADMIN_PW)
    expect(page.get_by_role("heading", name="Your accounts")).to_be_visible()

    page.get_by_role("link", name="Accounts").click()
    page.get_by_role("link", name="Manual settings").click()  # Add account opens the wizard (test_wizard.py)
    page.get_by_label("Account name").fill("Work")
    page.get_by_label("Email address").fill("alice@example.test")
    page.get_by_label("Username").fill(mail_user[0])
    page.get_by_label("Password").fill(mail_user[1])
    page.get_by_label("Incoming security").select_option("tls")
    page.get_by_label("Incoming server").fill("127.0.0.1")
    page.get_by_label("Incoming port").fill(str(dovecot.imaps_port))
    page.get_by_label("Outgoing (SMTP) server").fill("127.0.0.1")
    page.get_by_label("Outgoing security").select_option("starttls")
    page.get_by_label("Outgoing port").fill(str(smtp.port))
    page.locator("summary", has_text="Advanced: security and certificates").click()
    page.get_by_label("TLS certificate verification").select_option("custom")
    page.get_by_label("…or paste it (PEM)").fill(pki.ca_pem.read_text())
    page.get_by_role("button", name="Save").click()  # tests the settings first: they work
    expect(page.get_by_role("heading", name="Work")).to_be_visible()

    page.get_by_role("button", name="Test connection").click()  # HTMX swaps the result in
    expect(page.locator("#test-result")).to_contain_text("IMAP login OK")
    expect(page.locator("#test-result")).to_contain_text("SMTP login OK")
    expect(page).to_have_url(re.compile(r"/accounts/\d+$"))  # swapped in place, no navigation

    page.get_by_role("link", name="Users").click()
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Password").fill(BOB_PW)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("heading", name="bob")).to_be_visible()
    page.get_by_label("Account").select_option(label="Work")
    page.get_by_role("button", name="Grant").click()
    expect(page.get_by_text("Access of bob to Work updated")).to_be_visible()

    page.get_by_role("button", name="Log out admin").click()
    _login(page, "bob", BOB_PW)
    expect(page.get_by_role("link", name="Work")).to_be_visible()
    expect(page.get_by_role("link", name="Users")).to_have_count(0)
    assert page.problems == []  # no script error, no CSP violation (htmx runs under our CSP)
    response = page.goto("/admin/users")
    assert response.status == 403
