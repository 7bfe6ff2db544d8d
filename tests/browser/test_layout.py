"""In Chromium, at 390x844 (a phone) and 1280x800: the pages hold their shape. No page scrolls sideways,
long subjects end in … instead of widening the page, the menu and the search stay on screen, the folders
become a select and the list one block per message on a phone; no page breaks a CSP rule, also while a
fetch runs and its list fills in; times show in the user's (or the browser's) time zone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from playwright.sync_api import expect

from tests.pages import LONG, make_objects, page_urls
from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from tests.servers.faultproxy import FaultProxy

PASSWORD = "browser password 1"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
BAD_RED = "rgb(180, 35, 24)"  # --bad in app.css

# Reports every CSP violation (of the page and of its frames) to the test, across navigations.
CSP_LISTENER = """
document.addEventListener('securitypolicyviolation', (e) => {
  window.__cspViolation([location.href, e.violatedDirective, e.blockedURI, e.sample].join(' | '));
});
"""


class Session:
    """A browser context of one size, logged in or not, that records CSP violations and requests that
    would leave loopback (aborted)."""

    def __init__(self, browser: Any, live_server: str, size: dict[str, int], timezone: str | None = None) -> None:
        options: dict[str, Any] = {"base_url": live_server, "viewport": size}
        if size == PHONE:
            options.update(is_mobile=True, has_touch=True, device_scale_factor=2)
        if timezone:
            options["timezone_id"] = timezone
        self.context = browser.new_context(**options)
        self.violations: list[str] = []
        self.foreign: list[str] = []
        self.context.expose_function("__cspViolation", lambda text: self.violations.append(text))
        self.context.add_init_script(CSP_LISTENER)
        self.context.route("**/*", self._loopback_only)
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.page.on("console", self._console)

    def _loopback_only(self, route: Any) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", None):
            route.continue_()
        else:
            self.foreign.append(route.request.url)
            route.abort()

    def _console(self, message: Any) -> None:
        if "Content Security Policy" in message.text:
            self.violations.append(message.text)

    def login(self, username: str) -> None:
        page = self.page
        page.goto("/login")
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_role("heading", name="Your accounts")).to_be_visible()

    def widths(self) -> dict[str, int]:
        return self.page.evaluate(
            "() => ({scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,"
            " inner: window.innerWidth})"
        )

    def overflow(self, width: int) -> str | None:
        """Why the current page scrolls sideways at ``width``, or None."""
        self.page.wait_for_load_state()  # its stylesheet applied
        w = self.widths()
        if w["scroll"] <= w["inner"] and w["scroll"] <= w["client"] and w["inner"] == width:
            return None
        # Name the culprits: elements reaching past the screen, and the innermost ones wider inside.
        wide = self.page.evaluate(
            """(limit) => {
                 const name = (e) => e.tagName + '.' + e.className;
                 const all = [...document.querySelectorAll('body *')];
                 return all.filter(e => e.getBoundingClientRect().right > limit + 1).slice(0, 5)
                   .map(e => name(e) + ' ' + Math.round(e.getBoundingClientRect().right))
                   .concat(all.filter(e => e.scrollWidth > limit + 1).slice(-3)
                   .map(e => 'scroll ' + name(e) + ' ' + e.scrollWidth));
               }""",
            w["client"],
        )
        return f"{self.page.url}: {w} {wide}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def sessions(browser: Any, live_server: str) -> Iterator[Any]:
    made: list[Session] = []

    def make(size: dict[str, int], timezone: str | None = None) -> Session:
        made.append(Session(browser, live_server, size, timezone))
        return made[-1]

    yield make
    for session in made:
        session.close()


def test_every_page_fits_a_phone_and_a_desktop_and_breaks_no_csp_rule(
    app: Flask, sessions, make_user, make_account, dovecot: Dovecot
) -> None:
    objects = make_objects(make_user, make_account, dovecot, PASSWORD)
    urls = page_urls(app, objects)
    for size in (PHONE, DESKTOP):
        session = sessions(size)
        page = session.page
        page.goto("/login")
        problems = [session.overflow(size["width"])]
        session.login("boss")
        visited = 0
        for url in urls:
            answer = page.request.get(url)
            assert answer.ok, url
            if "text/html" not in answer.headers.get("content-type", ""):
                continue
            if not answer.text().lstrip().lower().startswith("<!doctype html"):
                continue  # a download, JSON or an HTMX fragment (checked within its page), not a page
            page.goto(url)
            if "/fetch/" in url or "job=" in url:
                page.wait_for_event("response", lambda r: "/fetch/" in r.url)  # one poll of the progress
            problems.append(session.overflow(size["width"]))
            visited += 1
        assert [p for p in problems if p] == [], size
        assert session.violations == [], size
        assert session.foreign == [], size
        assert visited >= 15


def _inside(page: Any, locator: Any) -> bool:
    """Is the element visible and wholly within the viewport's width?"""
    box = locator.bounding_box()
    return box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"] + 0.5


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_a_long_subject_ends_in_an_ellipsis_and_the_menu_and_search_stay_on_screen(
    sessions, make_user, make_account, dovecot: Dovecot, size: dict[str, int]
) -> None:
    from tests.pages import long_message
    from webapp.services.receiving import fetching

    dovecot.deliver_many("alice", [*generated.mix(5), long_message()])
    account = make_account()
    assert fetching.fetch(account).stored == 6
    make_user("boss", PASSWORD, role="admin")
    session = sessions(size)
    page = session.page
    session.login("boss")
    for name in ("Overview", "Accounts", "Users", "Settings", "Password", "Log out boss"):
        assert _inside(page, page.locator("header.top nav").get_by_text(name, exact=True)), name

    page.goto(f"/accounts/{account.id}/mailbox")
    assert session.overflow(size["width"]) is None
    row = page.locator("table.messages tbody tr").filter(has=page.locator(f'a[title="{"L" * LONG}"]'))
    subject, sender = row.locator("td.subject"), row.locator("td.who")
    assert sender.get_attribute("title") == "S" * LONG + " <sender@example.test>"
    for cell in (subject, sender):
        assert cell.evaluate("e => getComputedStyle(e).textOverflow") == "ellipsis"
        assert cell.evaluate("e => e.scrollWidth > e.clientWidth")  # cut, not wrapped over 5,000 characters
        assert cell.evaluate("e => e.getBoundingClientRect().height") < 80
        assert _inside(page, cell)
    search = page.get_by_role("search")
    for control in (
        search.get_by_label("Search"),
        search.get_by_role("button", name="Search"),
        search.get_by_label("Received between"),
        search.get_by_label("Received until"),
        search.get_by_label("Unread"),
        search.get_by_label("Has attachments"),
    ):
        assert _inside(page, control)
    if size == PHONE:
        expect(page.locator("nav.folders")).to_be_hidden()
        expect(page.get_by_label("Folder", exact=True)).to_be_visible()
        expect(page.locator("table.messages thead")).to_be_hidden()
        # One block per message: the subject under the sender, each the width of the screen at most.
        assert subject.bounding_box()["y"] > sender.bounding_box()["y"] + 5
        assert row.bounding_box()["width"] <= size["width"]
    else:
        expect(page.locator("nav.folders")).to_be_visible()
        expect(page.get_by_label("Folder", exact=True)).to_be_hidden()
        expect(page.locator("table.messages thead")).to_be_visible()
        assert abs(subject.bounding_box()["y"] - sender.bounding_box()["y"]) < 2

    subject.get_by_role("link").click()
    expect(page.locator("h1.subject")).to_be_visible()
    assert session.overflow(size["width"]) is None
    assert _inside(page, page.get_by_role("button", name="Mark unread"))
    assert session.violations == []


def test_on_a_phone_the_folder_select_opens_the_folder(
    sessions, make_user, make_account, dovecot: Dovecot, smtp
) -> None:
    from webapp.services.outgoing import sending
    from webapp.services.receiving import fetching

    dovecot.deliver_many("alice", generated.mix(3))
    account = make_account()
    fetching.fetch(account)
    sending.send(account, sending.Draft(to="bob@example.test", subject="Sent from the test", text="hi"))
    make_user("boss", PASSWORD, role="admin")
    session = sessions(PHONE)
    page = session.page
    session.login("boss")
    page.goto(f"/accounts/{account.id}/mailbox")
    expect(page.get_by_role("button", name="Open")).to_be_hidden()  # app.js opens the choice at once
    page.get_by_label("Folder", exact=True).select_option("Sent")
    expect(page).to_have_url(f"{page.url.split('?')[0]}?folder=Sent")
    expect(page.locator("#messages")).to_contain_text("Sent from the test")
    assert session.violations == []


def test_the_list_fills_while_the_fetch_runs_in_a_status_row_of_its_own_without_csp_violations(
    sessions, make_user, make_account, dovecot: Dovecot, worker
) -> None:
    from webapp.services.receiving import fetchjobs

    dovecot.deliver_many("alice", generated.mix(300))
    proxy = FaultProxy(dovecot.imap_port).start()
    held = proxy.hold(b"UID FETCH 101:150 ")  # the fetch stops mid-way until released
    try:
        account = make_account(incoming_security="none", incoming_port=proxy.port, fetch_strategy="replicate",
                               batch_size=50, timeout=60)  # fmt: skip
        make_user("boss", PASSWORD, role="admin")
        session = sessions(DESKTOP)
        page = session.page
        session.login("boss")
        page.goto(f"/accounts/{account.id}/mailbox")
        expect(page.locator("#messages")).to_contain_text("No messages in INBOX yet")
        page.get_by_role("button", name="Fetch Emails").click()
        assert held.arrived.wait(60)

        rows = page.locator("#messages tbody tr:not(.empty)")
        expect(rows).to_have_count(50)  # listed while the fetch still waits for its third batch
        job_id = page.locator("#fetch").get_attribute("hx-get").split("/fetch/")[1].split("?")[0]
        assert not fetchjobs.status(job_id).finished
        expect(page.locator("#fetch progress")).to_be_visible()
        expect(page.locator("#messages time[data-local]")).to_have_count(0)  # app.js formatted the new rows too
        # The status is a row of its own between the head and the folders, on top of nothing.
        status = page.locator("#fetch").bounding_box()
        folders = page.locator("nav.folders").bounding_box()
        head = page.locator(".mailbox-head").bounding_box()
        assert head["y"] + head["height"] <= status["y"] and status["y"] + status["height"] <= folders["y"]
        assert page.get_by_role("button", name="Cancel").is_visible()

        held.release()
        expect(page.locator("#fetch [data-state=finished]")).to_contain_text("Fetched: 300 new", timeout=60_000)
        expect(rows).to_have_count(50)
        expect(page.locator("#messages a[rel=next]")).to_be_visible()
        assert session.overflow(DESKTOP["width"]) is None
        assert session.violations == []
    finally:
        proxy.stop()


def test_a_cancelled_fetch_is_said_calmly_not_in_error_red(
    sessions, make_user, make_account, dovecot: Dovecot, worker
) -> None:
    dovecot.deliver_many("alice", generated.mix(150))
    proxy = FaultProxy(dovecot.imap_port).start()
    held = proxy.hold(b"UID FETCH 51:100 ")
    try:
        account = make_account(incoming_security="none", incoming_port=proxy.port, fetch_strategy="replicate",
                               batch_size=50, timeout=60)  # fmt: skip
        make_user("boss", PASSWORD, role="admin")
        session = sessions(PHONE)
        page = session.page
        session.login("boss")
        page.goto(f"/accounts/{account.id}/mailbox")
        page.get_by_role("button", name="Fetch Emails").click()
        # (Failed once in CI, under two suites at once; what the fetch did and said is printed if so.)
        assert held.arrived.wait(60), (
            proxy.from_client[-6:],
            page.locator("#fetch").inner_text(),
            worker.log.read_text()[-3000:],
        )
        page.get_by_role("button", name="Cancel").click()
        expect(page.locator("#fetch")).to_contain_text("stopping after this batch")
        held.release()
        cancelled = page.locator("#fetch [data-state=cancelled]")
        expect(cancelled).to_contain_text("Fetch cancelled", timeout=60_000)
        assert cancelled.evaluate("e => getComputedStyle(e).color") != BAD_RED
        assert session.overflow(PHONE["width"]) is None
        assert session.violations == []
    finally:
        proxy.stop()


def test_times_show_in_the_browsers_time_zone_until_the_user_chooses_one(
    sessions, make_user, make_account, dovecot: Dovecot
) -> None:
    from tests.pages import long_message
    from webapp.services.receiving import fetching

    dovecot.deliver("alice", long_message())  # Date: Wed, 07 Jan 2026 09:30:00 +0000
    account = make_account()
    fetching.fetch(account)
    make_user("boss", PASSWORD, role="admin")
    session = sessions(DESKTOP, timezone="Asia/Tokyo")
    page = session.page
    session.login("boss")
    page.goto(f"/accounts/{account.id}/mailbox")
    listed = page.locator("#messages td.date time")
    expect(listed).to_have_text("2026-01-07 18:30")
    assert listed.get_attribute("title") == "2026-01-07 09:30:00 UTC"
    listed.locator("xpath=ancestor::tr").locator("td.subject a").click()
    expect(page.locator("dd.date time")).to_have_text("2026-01-07 18:30:00")

    page.get_by_role("link", name="Settings").click()
    expect(page.locator("[data-browser-zone]")).to_have_text("Asia/Tokyo")
    page.get_by_label("Time zone").select_option("America/New_York")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash.success")).to_have_text("Settings saved.")
    page.goto(f"/accounts/{account.id}/mailbox")
    expect(listed).to_have_text("2026-01-07 04:30")
    assert listed.get_attribute("title") == "2026-01-07 09:30:00 UTC"
    assert session.violations == []
