"""Every GET page of the app (from app.url_map, ids filled with real objects): it answers, and its ids are
unique (several forms on one page used to repeat id="csrf_token")."""

from __future__ import annotations

from collections import Counter
from html.parser import HTMLParser

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import TEST_PASSWORD
from tests.pages import make_objects, page_urls
from tests.servers.dovecot import Dovecot


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: Counter[str] = Counter()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value is not None:
                self.ids[value] += 1


def duplicate_ids(html: str) -> list[str]:
    parser = _Ids()
    parser.feed(html)
    return sorted(name for name, count in parser.ids.items() if count > 1)


def test_every_page_answers_and_has_unique_ids(
    app: Flask, client: FlaskClient, make_user, make_account, login, dovecot: Dovecot
) -> None:
    objects = make_objects(make_user, make_account, dovecot, TEST_PASSWORD)
    login("boss")
    checked = []
    for url in page_urls(app, objects):
        response = client.get(url, follow_redirects=True)
        assert response.status_code == 200, url
        if response.mimetype != "text/html":
            continue
        page = response.get_data(as_text=True)
        assert duplicate_ids(page) == [], url
        # The fragment the page polls, as htmx asks for it, is checked along with its page.
        if "/fetch/" in url:
            fragment = client.get(url, headers={"HX-Request": "true"}).get_data(as_text=True)
            assert duplicate_ids(fragment) == [], url
        checked.append(url)
    assert len(checked) >= 15
    assert f"/accounts/{objects.account.id}" in checked and "/settings/" in checked


def test_one_is_singular_in_the_folder_picker(
    client: FlaskClient, make_user, make_account, login, dovecot: Dovecot
) -> None:
    from tests.servers import messages as generated

    dovecot.deliver_many("alice", generated.mix(1), folder="Archive")
    account = make_account()
    make_user("boss", role="admin")
    login("boss")
    picker = client.get(f"/accounts/{account.id}/server-folders", headers={"HX-Request": "true"})
    text = " ".join(picker.get_data(as_text=True).split())
    assert 'Archive <span class="muted">1 message</span>' in text and "1 messages" not in text
