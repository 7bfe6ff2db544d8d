"""Every page and download is sent with Cache-Control: no-store (a route may choose a private policy of
its own); static files keep theirs."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import TEST_PASSWORD
from tests.pages import endpoint_urls, make_objects
from tests.servers.dovecot import Dovecot


def test_every_get_route_as_a_logged_in_admin_is_not_stored(
    app: Flask, client: FlaskClient, make_user, make_account, login, dovecot: Dovecot
) -> None:
    urls = endpoint_urls(app, make_objects(make_user, make_account, dovecot, TEST_PASSWORD))
    login("boss")
    for url in urls.values():
        response = client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        policy = response.headers.get("Cache-Control", "")
        assert "no-store" in policy.replace(" ", "").split(","), (url, policy)
    for download in ("messages.attachment", "messages.raw", "messages.inline_image"):
        assert client.get(urls[download]).headers["Cache-Control"] == "private, no-store"


def test_pages_for_anonymous_visitors_are_not_stored_either(client: FlaskClient, make_user) -> None:
    make_user("bob")
    for url in ("/login", "/", "/healthz", "/messages/1"):
        assert client.get(url).headers["Cache-Control"] == "no-store", url


def test_static_files_keep_their_own_caching(client: FlaskClient) -> None:
    response = client.get("/static/app.css")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("Cache-Control", "")
    response.close()
