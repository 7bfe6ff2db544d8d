"""Screenshots of the main pages at 1280x800 and 390x844 (a phone), for the README and for a look.

    .venv/bin/python -m tests.screenshots [OUTDIR]     (default: docs/screenshots)

Starts the test kit's servers (Dovecot, SMTP, Redis, SQLite or ``DATABASE_URL``) in a temporary folder,
fills an account with the same messages the layout tests use (a 5,000-character subject among them),
serves the app on 127.0.0.1 and photographs the overview, mailbox, message, compose, account, outbox and draft pages
with the Debian Chromium. Run it as root, as the tests (Dovecot starts as root and drops privileges).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from werkzeug.serving import make_server

from tests.browser.conftest import CHROMIUM_ARGS
from tests.pages import make_objects
from tests.servers import database as test_database
from tests.servers import pki as test_pki
from tests.servers import redis as test_redis
from tests.servers.dovecot import Dovecot
from tests.servers.ports import free_port
from tests.servers.requirements import require_chromium
from tests.servers.smtp import SmtpServer

PASSWORD = "screenshot password 1"
SIZES = {"1280": {"width": 1280, "height": 800}, "390": {"width": 390, "height": 844}}


def _pages(objects: Any) -> dict[str, str]:
    account = objects.account.id
    return {
        "overview": "/",
        "mailbox": f"/accounts/{account}/mailbox",
        "message": f"/messages/{objects.rich.id}",
        "compose": f"/accounts/{account}/compose",
        "account": f"/accounts/{account}",
        "outbox-failed": f"/accounts/{account}/outbox/failed",
        "draft": f"/accounts/{account}/compose?draft={objects.draft_id}",
        "wizard": "/accounts/setup/",
        "manual-settings": "/accounts/new",
    }


def _loopback_only(route: Any) -> None:
    if urlsplit(route.request.url).hostname == "127.0.0.1":
        route.continue_()
    else:
        route.abort()


def shoot(base_url: str, pages: dict[str, str], outdir: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=require_chromium(), args=CHROMIUM_ARGS)
        for label, size in SIZES.items():
            phone = label == "390"
            context = browser.new_context(
                base_url=base_url, viewport=size, is_mobile=phone, has_touch=phone, timezone_id="UTC", locale="en-GB"
            )
            # Nothing leaves the machine (the message's remote image stays blocked anyway).
            context.route("**/*", _loopback_only)
            page = context.new_page()
            page.goto("/login")
            page.get_by_label("Username").fill("boss")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url(f"{base_url}/")
            for name, url in pages.items():
                page.goto(url)
                # Frames below the fold are painted only once scrolled to (headless, full page).
                for frame in page.locator("iframe").all():
                    frame.scroll_into_view_if_needed()
                page.evaluate("window.scrollTo(0, 0)")
                path = outdir / f"{name}-{label}.png"
                page.screenshot(path=str(path), full_page=True)
                written.append(path)
            context.close()
        browser.close()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("outdir", nargs="?", default="docs/screenshots", type=Path)
    args = parser.parse_args()
    args.outdir.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="ecs-"))
    os.environ["EMAILCONNECTOR_INSTANCE_PATH"] = str(folder / "instance")
    (folder / "instance").mkdir()
    pki = test_pki.make(folder / "pki")
    dovecot = Dovecot(folder / "dovecot", pki)
    dovecot.start()
    smtp = SmtpServer(dovecot, pki)
    smtp.start()
    redis = test_redis.start(folder)
    database = test_database.create(folder)
    try:
        written = _run(dovecot, smtp, pki, redis.url, database.url, args.outdir)
    finally:
        database.drop()
        redis.stop()
        smtp.stop()
        dovecot.stop()
        shutil.rmtree(folder, ignore_errors=True)
    for path in written:
        print(path)


def _run(
    dovecot: Dovecot, smtp: SmtpServer, pki: test_pki.Pki, redis_url: str, database_url: str, outdir: Path
) -> list[Path]:
    from flask_migrate import upgrade

    from webapp import create_app
    from webapp.adapters.storage.secretbox import generate_key
    from webapp.extensions import db
    from webapp.services.account import accounts
    from webapp.services.account.accounts import AccountSettings
    from webapp.services.identity import users
    from webapp.services.outgoing import sending

    config = {"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": "screenshots" * 4,
              "ENCRYPTION_KEYS": generate_key()}  # fmt: skip
    app = create_app(config)
    dovecot.add_user("alice", "alice-mail-pw")
    with app.app_context():
        upgrade()

        def make_user(username: str, password: str, role: str = "user") -> Any:
            return users.create(username, password, role)

        def make_account(**over: Any) -> Any:
            values: dict[str, Any] = {
                "name": "Work", "address": "alice@example.test", "display_name": "Alice Example",
                "username": "alice", "password": "alice-mail-pw", "incoming_protocol": "imap",
                "incoming_security": "tls", "incoming_host": "127.0.0.1", "incoming_port": dovecot.imaps_port,
                "outgoing_host": "127.0.0.1", "outgoing_port": smtp.port, "outgoing_security": "starttls",
                "tls_verify": "custom", "ca_cert_pem": pki.ca_pem.read_text(), "timeout": 10,
            }  # fmt: skip
            values.update(over)
            return accounts.create(AccountSettings(**values))

        objects = make_objects(make_user, make_account, dovecot, PASSWORD)
        sending.send(objects.account, sending.Draft(to="bob@example.test", subject="Minutes of Monday", text="Hi Bob"))
        pages = _pages(objects)
        db.session.remove()
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        return shoot(f"http://127.0.0.1:{port}", pages, outdir)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        with app.app_context():
            db.engine.dispose()


if __name__ == "__main__":
    main()
