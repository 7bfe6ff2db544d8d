"""Test connection in Chromium: both servers are asked at once and each result shows as soon as it is known."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy
from tests.servers.smtp import SmtpServer

PASSWORD = "browser password 1"


def test_the_fast_answer_shows_while_the_slow_server_is_still_being_tested(
    page: Any, make_user, make_account, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    proxy = FaultProxy(smtp.port).start()
    held = proxy.hold(b"ehlo")  # the SMTP server answers late, exactly there (smtplib says "ehlo")
    try:
        # TLS spoken to the plain IMAP port: refused at once, with advice.
        account = make_account(
            incoming_security="tls",
            incoming_port=dovecot.imap_port,
            outgoing_port=proxy.port,
            timeout=60,
            outgoing_security="none",  # plain SMTP: the proxy reads its lines (AUTH is allowed on loopback)
        )
        make_user("boss", PASSWORD, role="admin")
        page.goto("/login")
        page.get_by_label("Username").fill("boss")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"/accounts/{account.id}")
        expect(page.locator("#connection-test")).to_contain_text("never tested")
        page.get_by_role("button", name="Test connection").click()

        incoming = page.locator('#test-result [data-server="incoming"]')
        outgoing = page.locator('#test-result [data-server="outgoing"]')
        expect(incoming).to_contain_text("does not speak TLS directly")
        expect(outgoing).to_have_text("Testing SMTP…")  # still waiting for its server
        held.release()
        expect(outgoing).to_contain_text("SMTP login OK", timeout=30_000)
        expect(incoming).to_contain_text("does not speak TLS directly")  # the first result stays
        # The status block says so too, without a reload: IMAP failed, SMTP OK.
        expect(page.locator("#connection-test")).to_contain_text("IMAP failed")
        expect(page.locator("#connection-test")).to_contain_text("SMTP OK")
        assert page.problems == []
    finally:
        held.release()
        proxy.stop()
