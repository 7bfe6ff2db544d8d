"""Password guesses are throttled atomically, per (name, address) and per address, on the login page and
on the password page; a lock from one address does not keep the user out from another."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from tests.conftest import TEST_PASSWORD, csrf_token
from tests.servers.ports import free_port
from webapp.services.identity import throttle

LIMIT = 5  # LOGIN_MAX_FAILURES in the tests' configuration


@pytest.fixture
def live_url(app: Flask, make_app) -> Iterator[str]:
    """A separate app instance served by werkzeug's threaded server on 127.0.0.1."""
    served = make_app()
    server = make_server("127.0.0.1", free_port(), served, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def _from(app: Flask, addr: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    return client


def _login(client: FlaskClient, username: str, password: str) -> int:
    page = client.get("/login").get_data(as_text=True)
    return client.post(
        "/login", data={"csrf_token": csrf_token(page), "username": username, "password": password}
    ).status_code


def test_sixteen_parallel_guesses_get_exactly_the_allowed_number_of_checks(live_url: str, make_user) -> None:
    make_user("bob")
    clients = 16
    ready = threading.Barrier(clients, timeout=60)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def guess() -> None:
        try:
            with requests.Session() as browser:
                page = browser.get(f"{live_url}/login", timeout=60).text
                token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
                ready.wait()  # all sixteen posts leave together
                response = browser.post(
                    f"{live_url}/login",
                    data={"csrf_token": token, "username": "bob", "password": "wrong guess"},
                    allow_redirects=False,
                    timeout=60,
                )
                statuses.append(response.status_code)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=guess) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    # 401 = the password was checked (and wrong); 429 = refused before any check.
    assert Counter(statuses) == {401: LIMIT, 429: clients - LIMIT}


def test_a_lock_from_one_address_does_not_lock_the_user_out_elsewhere(app: Flask, make_user) -> None:
    make_user("bob")
    attacker, bob = _from(app, "203.0.113.9"), _from(app, "198.51.100.4")
    for _ in range(LIMIT):
        assert _login(attacker, "bob", "wrong guess") == 401
    assert _login(attacker, "bob", TEST_PASSWORD) == 429  # even the right password, from there
    assert _login(bob, "bob", TEST_PASSWORD) == 302
    assert _login(_from(app, "203.0.113.9"), "bob", TEST_PASSWORD) == 429  # a fresh cookie changes nothing


def test_one_address_guessing_many_names_is_throttled_too(app: Flask, make_user) -> None:
    make_user("bob")
    sprayer = _from(app, "203.0.113.10")
    for n in range(LIMIT * throttle.ADDRESS_FACTOR):
        assert _login(sprayer, f"user{n}", "wrong guess") == 401
    assert _login(sprayer, "bob", TEST_PASSWORD) == 429
    assert _login(_from(app, "203.0.113.11"), "bob", TEST_PASSWORD) == 302


def test_a_right_password_gives_the_slot_back(app: Flask, make_user) -> None:
    make_user("bob")
    client = _from(app, "198.51.100.5")
    for _ in range(LIMIT - 1):
        assert _login(client, "bob", "wrong guess") == 401
    assert _login(client, "bob", TEST_PASSWORD) == 302
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    for _ in range(LIMIT):
        assert _login(client, "bob", "wrong guess") == 401
    assert _login(client, "bob", "wrong guess") == 429


def test_the_current_password_on_the_password_page_is_throttled(app: Flask, make_user) -> None:
    make_user("bob")
    client = _from(app, "198.51.100.6")
    assert _login(client, "bob", TEST_PASSWORD) == 302
    new = "a brand new password"

    def change(current: str):
        page = client.get("/password").get_data(as_text=True)
        data = {"csrf_token": csrf_token(page), "current": current, "password": new, "confirm": new}
        return client.post("/password", data=data)

    for _ in range(LIMIT):
        assert "does not match" in change("wrong guess").get_data(as_text=True)
    throttled = change(TEST_PASSWORD)
    assert throttled.status_code == 429 and "Too many failed" in throttled.get_data(as_text=True)
    assert _login(_from(app, "198.51.100.6"), "bob", TEST_PASSWORD) == 429  # the same name and address
    assert _login(_from(app, "198.51.100.7"), "bob", TEST_PASSWORD) == 302


def test_forwarded_for_without_proxy_fix_is_warned_about_once(make_app, caplog) -> None:
    caplog.set_level(logging.WARNING)
    client = make_app().test_client()
    client.get("/healthz")
    assert "PROXY_FIX_X_FOR" not in caplog.text
    client.get("/login", headers={"X-Forwarded-For": "203.0.113.1"})
    client.get("/login", headers={"X-Forwarded-For": "203.0.113.2"})
    assert caplog.text.count("X-Forwarded-For but PROXY_FIX_X_FOR is 0") == 1
    caplog.clear()
    trusting = make_app(PROXY_FIX_X_FOR=1).test_client()
    trusting.get("/login", headers={"X-Forwarded-For": "203.0.113.3"})
    assert "PROXY_FIX_X_FOR" not in caplog.text


def test_behind_a_trusted_proxy_the_client_address_counts(make_app, make_user) -> None:
    make_user("bob")
    proxied = make_app(PROXY_FIX_X_FOR=1)
    attacker = proxied.test_client()
    attacker.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.20"
    for _ in range(LIMIT):
        assert _login(attacker, "bob", "wrong guess") == 401
    assert _login(attacker, "bob", TEST_PASSWORD) == 429
    colleague = proxied.test_client()
    colleague.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.21"
    assert _login(colleague, "bob", TEST_PASSWORD) == 302
