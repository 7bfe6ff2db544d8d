"""In Chromium: compose → send → fetch → read → show images → download; the XSS vectors on the real page."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from tests.servers.dovecot import Dovecot
from tests.servers.ports import free_port, refused_port
from tests.servers.smtp import SmtpServer
from webapp.services.identity import users
from webapp.services.outgoing import sending
from webapp.services.outgoing.sending import Draft, OutgoingAttachment
from webapp.services.reading import messages
from webapp.services.receiving import fetching

PASSWORD = "browser password 1"
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
    "000154a24f5d0000000049454e44ae426082"
)
VECTORS = [
    line.split("\t")
    for line in (Path(__file__).parent.parent / "data" / "xss_vectors.txt").read_text(encoding="utf-8").splitlines()
    if line.strip()
]


class _ImageServer(http.server.ThreadingHTTPServer):
    requests: list[str]


@pytest.fixture
def image_server() -> Iterator[_ImageServer]:
    """A 'remote' image host on loopback, to see whether (and when) the browser asks it for images."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.server.requests.append(self.path)  # type: ignore[attr-defined]
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: Any) -> None:
            pass

    server = _ImageServer(("127.0.0.1", free_port()), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _login(page: Any, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Your accounts")).to_be_visible()


def test_compose_send_fetch_read_show_images_download_and_error_logs(
    page: Any, live_server: str, make_user, make_account, dovecot: Dovecot, smtp: SmtpServer, worker,
    image_server: _ImageServer, tmp_path: Path,
) -> None:  # fmt: skip
    make_account()
    make_user("boss", PASSWORD, role="admin")
    pixel = f"http://127.0.0.1:{image_server.server_address[1]}/pixel.png"
    attachment = tmp_path / "Bericht ä.pdf"
    attachment.write_bytes(b"%PDF-1.4 test attachment \x00\x01\x02")

    _login(page, "boss")
    page.get_by_role("link", name="Work").click()
    page.get_by_role("link", name="New Email").click()
    page.get_by_label("To", exact=True).fill("alice@example.test; bob@example.test")
    page.get_by_label("Subject").fill("Browser test ✓")
    page.get_by_label("Text").fill("Hello from the browser")
    page.get_by_label("HTML (optional)").fill(f'<p>Hello <b>there</b> <img src="{pixel}" alt="pixel"></p>')
    page.get_by_label("Attachments").set_input_files(str(attachment))
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".flash.success")).to_contain_text("Sent: Browser test ✓")
    expect(page.locator("#messages")).to_contain_text("alice@example.test, bob@example.test")
    assert len(smtp.received) == 1

    page.get_by_role("link", name="INBOX").click()
    expect(page.locator("#messages")).to_contain_text("No messages in INBOX yet")
    page.get_by_role("button", name="Fetch Emails").click()  # the worker process runs the job
    expect(page.locator("#fetch")).to_contain_text("Fetched: 1 new", timeout=60_000)
    page.locator("#messages").get_by_role("link", name="Browser test ✓").click()

    expect(page.get_by_role("heading", name="Browser test ✓")).to_be_visible()
    frame = page.frame_locator("iframe.message-html")
    expect(frame.locator("b")).to_have_text("there")
    expect(page.locator(".notice")).to_contain_text("1 remote image blocked")
    assert image_server.requests == []
    page.get_by_role("link", name="Show images").click()
    expect(page.frame_locator("iframe.message-html").locator("img")).to_have_js_property("naturalWidth", 1)
    assert image_server.requests == ["/pixel.png"]

    with page.expect_download() as info:
        page.get_by_role("link", name="Bericht ä.pdf").click()
    download = info.value
    assert download.suggested_filename == "Bericht ä.pdf"
    assert Path(download.path()).read_bytes() == attachment.read_bytes()

    broken = make_account(name="Broken", incoming_port=refused_port())
    page.goto(f"/accounts/{broken.id}")
    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#test-result")).to_contain_text("refused the connection")
    page.get_by_role("link", name="Error logs").click()
    expect(page.locator("table.errors")).to_contain_text("test connection")
    expect(page.locator("table.errors")).to_contain_text("refused the connection")
    assert page.problems == []


def test_xss_vectors_run_nothing_and_load_nothing_on_the_message_page(
    page: Any, live_server: str, make_user, make_account, dovecot: Dovecot, smtp: SmtpServer
) -> None:
    account = make_account(fetch_count=200)
    for index, (payload, source) in enumerate(VECTORS):
        if "filename context" in source.lower():
            draft = Draft(to="alice@example.test", subject=f"vector {index}", text="see the attachment",
                          attachments=(OutgoingAttachment(payload, b"x"),))  # fmt: skip
        elif "linkifier" in source.lower() or "texttohtml" in source.lower():
            draft = Draft(to="alice@example.test", subject=f"vector {index}", text=payload)
        else:
            draft = Draft(to="alice@example.test", subject=f"vector {index}", html=payload)
        sending.send(account, draft)
        # The subject is a plain-text context too.
    sending.send(account, Draft(to="alice@example.test", subject='"><img src=x onerror=alert(1)>', text="x"))
    summary = fetching.fetch(account)
    assert summary.stored == len(VECTORS) + 1
    inbox = messages.listing(account, "INBOX", limit=0)
    users.grant(make_user("viewer", PASSWORD), account, read=True, send=False)

    dialogs: list[str] = []
    foreign: list[str] = []
    origin = urlsplit(live_server).netloc
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("request", lambda r: foreign.append(r.url) if urlsplit(r.url).scheme in ("http", "https")
            and urlsplit(r.url).netloc != origin else None)  # fmt: skip
    _login(page, "viewer")
    for message in inbox:
        page.goto(f"/messages/{message.id}")
        expect(page.locator("h1.subject")).to_be_visible()
        if message.html_body:
            expect(page.locator("iframe.message-html")).to_be_attached()
            assert "allow-scripts" not in (page.locator("iframe.message-html").get_attribute("sandbox") or "")
        # Anything that ran would have set this flag, opened a dialog or requested something.
        assert page.evaluate("() => typeof window.alert === 'function' && !window.__xss") is True
    assert dialogs == []
    assert foreign == []
    assert page.problems == []  # a CSP violation would mean something live reached the page


def test_inline_images_load_in_the_sandboxed_frame_through_their_signed_links(
    page: Any, live_server: str, make_user, make_account, dovecot: Dovecot
) -> None:
    from email.message import EmailMessage as MimeMessage
    from email.policy import SMTP

    msg = MimeMessage(policy=SMTP)
    msg["From"] = "sender@example.test"
    msg["To"] = "alice@example.test"
    msg["Subject"] = "Inline logo"
    msg.set_content("see the logo")
    msg.add_alternative('<p>Logo: <img src="cid:logo@x" alt="logo"></p>', subtype="html")
    msg.get_payload()[1].add_related(PNG, maintype="image", subtype="png", cid="<logo@x>")
    dovecot.deliver("alice", msg.as_bytes())
    account = make_account()
    assert fetching.fetch(account).stored == 1
    (message,) = messages.listing(account)
    users.grant(make_user("viewer", PASSWORD), account, read=True, send=False)

    _login(page, "viewer")
    page.goto(f"/messages/{message.id}")
    logo = page.frame_locator("iframe.message-html").locator("img")
    expect(logo).to_have_js_property("naturalWidth", 1)  # loaded, though the frame sends no cookie
    (inline_part,) = [a for a in message.attachments if a.content_id == "logo@x"]
    source = urlsplit(logo.evaluate("img => img.currentSrc"))
    assert source.path == f"/messages/{message.id}/inline/{inline_part.id}" and source.query.startswith("t=")
    assert page.problems == []  # no CSP violation
