"""In Chromium: add a webhook, copy its secret (a static script under the CSP), send a test event, redeliver."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.servers.webhookreceiver import Receiver
from webapp.adapters import webhook

PASSWORD = "browser password 1"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_secret_panel_copy_test_event_and_redeliver(
    page: Any, live_server: str, make_user, make_account, receiver: Receiver
) -> None:
    account = make_account()
    make_user("boss", PASSWORD, role="admin")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page.goto("/login")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"/accounts/{account.id}")

    page.get_by_label("Webhook URL").fill(receiver.url("/in"))
    page.get_by_label("Fetch complete").uncheck()
    page.get_by_role("button", name="Add webhook").click()
    panel = page.locator("#webhook-secret-panel")
    expect(panel).to_contain_text("shown only now")
    secret = page.locator("#webhook-secret").inner_text()
    assert len(secret) >= 32
    assert page.url.endswith(f"/accounts/{account.id}")  # HTMX: the page was not left
    page.get_by_role("button", name="Copy").click()
    expect(panel).to_contain_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("#webhooks")).to_contain_text(re.compile(r"Test event delivered in \d+ ms\."))
    assert webhook.verify(secret, receiver.requests[0].body, receiver.requests[0].headers["x-emailconnector-signature"])
    expect(page.locator("#webhook-secret")).to_have_count(0)  # gone once anything else happened

    receiver.answer(500)
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("#webhooks")).to_contain_text(f"http://127.0.0.1:{receiver.port} answered 500")
    receiver.answer(200)
    page.locator("tr", has_text="failed").get_by_role("button", name="Redeliver").click()
    expect(page.locator("#webhooks")).to_contain_text(re.compile(r"Redelivery of #\d+ delivered in \d+ ms\."))
    assert len(receiver.requests) == 3
    assert (
        receiver.requests[2].headers["x-emailconnector-delivery"]
        == receiver.requests[1].headers["x-emailconnector-delivery"]
    )

    page.get_by_role("link", name="how webhooks work").click()
    expect(page.get_by_role("heading", name="Verifying the signature")).to_be_visible()
    assert page.problems == []  # no CSP violation, no script error
