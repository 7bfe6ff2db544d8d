"""In Chromium, with a real worker: a draft with an attachment is saved, reopened, queued against a failing
server, shows up in Failed with the reason; the server is fixed, Retry, and it is in Sent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.servers.smtp import SmtpServer
from webapp.services.identity import users

PASSWORD = "browser password 1"


def test_draft_queue_fail_retry_sent(
    page: Any, live_server: str, make_user, make_account, smtp: SmtpServer, worker, tmp_path: Path
) -> None:
    account = make_account(max_send_attempts=1)
    users.grant(make_user("writer", PASSWORD), account, read=True, send=True)
    attachment = tmp_path / "Angebot.pdf"
    attachment.write_bytes(b"%PDF-1.4 offer")

    page.goto("/login")
    page.get_by_label("Username").fill("writer")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Work").click()
    page.get_by_role("link", name="New Email").click()
    page.get_by_label("To", exact=True).fill("bob@example.test")
    page.get_by_label("Subject").fill("Offer")
    page.get_by_label("Text").fill("Please find the offer attached.")
    page.get_by_label("Attachments").set_input_files(str(attachment))
    page.get_by_role("button", name="Save draft").click()
    expect(page.locator(".flash.success")).to_contain_text("Draft saved")
    expect(page.locator(".stored-attachments")).to_contain_text("Angebot.pdf")

    page.get_by_role("link", name="Cancel").click()  # to the Drafts tab
    page.get_by_role("link", name="Offer").click()
    expect(page.get_by_label("Subject")).to_have_value("Offer")
    expect(page.locator(".stored-attachments")).to_contain_text("Angebot.pdf")

    smtp.fail_with = "554 5.7.1 Relay access denied"
    page.get_by_role("button", name="Queue").click()
    expect(page.locator(".flash.success")).to_contain_text("Queued: Offer")
    # The worker tries it; the Queued list refreshes itself until it has gone.
    expect(page.locator("#outbox-list")).to_contain_text("Nothing queued", timeout=60_000)
    page.get_by_role("link", name="Failed").click()
    row = page.locator("table.outbox tbody tr").first
    expect(row).to_contain_text("Offer")
    expect(row).to_contain_text("554 5.7.1 Relay access denied")
    assert smtp.received == []

    smtp.fail_with = None
    row.get_by_role("button", name="Retry").click()
    expect(page.locator(".flash.success")).to_contain_text("Queued again")
    page.get_by_role("link", name="Queued").click()
    expect(page.locator("#outbox-list")).to_contain_text("Nothing queued", timeout=60_000)
    page.get_by_role("link", name="Sent").click()
    expect(page.locator("table.outbox")).to_contain_text("Offer")
    (received,) = smtp.received
    assert b'filename="Angebot.pdf"' in received.data
    assert page.problems == []
