"""First run, login, logout, password change, CSRF, throttling and the session cookie."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import TEST_PASSWORD, csrf_token
from webapp.services.identity import setup


def test_first_run_needs_the_setup_token_and_happens_once(app: Flask, client: FlaskClient, post_form) -> None:
    assert client.get("/").headers["Location"] == "/setup"  # nobody to log in as yet
    assert client.get("/login").headers["Location"] == "/setup"
    token = setup.issue_token()
    assert token
    form = {"username": "root", "password": TEST_PASSWORD, "confirm": TEST_PASSWORD}
    wrong = post_form("/setup", {**form, "token": "not-the-token"})
    assert wrong.status_code == 200
    assert "setup token: not valid" in wrong.get_data(as_text=True)
    ok = post_form("/setup", {**form, "token": token})
    assert ok.status_code == 302
    assert client.get("/").status_code == 200  # logged in as the new admin
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    # The token is spent and setup is closed once a user exists.
    assert client.get("/setup").headers["Location"] == "/login"
    assert setup.issue_token() is None
    other = app.test_client()
    page = other.get("/setup", follow_redirects=True).get_data(as_text=True)
    assert "Log in" in page


def test_login_logout_and_roles(client: FlaskClient, make_user, login) -> None:
    make_user("boss", role="admin")
    make_user("bob")
    assert login("bob", "wrong password").status_code == 401
    assert login("bob").status_code == 302
    assert client.get("/").status_code == 200
    assert client.get("/admin/users").status_code == 403
    assert client.get("/accounts/").status_code == 403
    token = csrf_token(client.get("/").get_data(as_text=True))
    client.post("/logout", data={"csrf_token": token})
    assert client.get("/").status_code == 302
    assert login("BOSS").status_code == 302  # names are case-insensitive
    assert client.get("/admin/users").status_code == 200


def test_every_form_needs_the_csrf_token(client: FlaskClient, make_user) -> None:
    make_user("bob")
    response = client.post("/login", data={"username": "bob", "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True)


def test_login_is_throttled_across_processes(app: Flask, make_app, make_user, login) -> None:
    make_user("bob")
    for _ in range(5):
        assert login("bob", "wrong-guess").status_code == 401
    # A second app instance (another process would be the same) sees the same counter through Redis.
    other = make_app().test_client()
    page = other.get("/login").get_data(as_text=True)
    response = other.post("/login", data={"csrf_token": csrf_token(page), "username": "bob", "password": TEST_PASSWORD})
    assert response.status_code == 429
    assert "Too many failed logins" in response.get_data(as_text=True)


def test_session_cookie_flags(app: Flask, make_user, login, client: FlaskClient) -> None:
    make_user("bob")
    cookie = login("bob").headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain http
    secure = app.test_client()
    page = secure.get("/login", base_url="https://mail.example.test").get_data(as_text=True)
    response = secure.post(
        "/login",
        data={"csrf_token": csrf_token(page), "username": "bob", "password": TEST_PASSWORD},
        base_url="https://mail.example.test",
        headers={"Referer": "https://mail.example.test/login"},
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_secure_cookie_behind_a_proxy_that_says_https(make_app, make_user) -> None:
    make_user("bob")
    proxied = make_app(PROXY_FIX_X_PROTO=1).test_client()
    # Flask-WTF checks the Referer on https requests, as browsers send it.
    headers = {"X-Forwarded-Proto": "https", "Referer": "https://localhost/login"}
    page = proxied.get("/login", headers=headers).get_data(as_text=True)
    response = proxied.post(
        "/login",
        data={"csrf_token": csrf_token(page), "username": "bob", "password": TEST_PASSWORD},
        headers=headers,
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_changing_the_password_ends_other_sessions(
    app: Flask, client: FlaskClient, make_user, login, post_form
) -> None:
    make_user("bob")
    login("bob")
    elsewhere = app.test_client()
    page = elsewhere.get("/login").get_data(as_text=True)
    elsewhere.post("/login", data={"csrf_token": csrf_token(page), "username": "bob", "password": TEST_PASSWORD})
    assert elsewhere.get("/").status_code == 200
    new = "a brand new password"
    wrong = post_form("/password", {"current": "nope", "password": new, "confirm": new})
    assert "does not match" in wrong.get_data(as_text=True)
    assert post_form("/password", {"current": TEST_PASSWORD, "password": new, "confirm": new}).status_code == 302
    assert client.get("/").status_code == 200  # this session stays
    assert elsewhere.get("/").status_code == 302  # the other one ended
    stored = app.extensions["sqlalchemy"].session.scalar(
        __import__("sqlalchemy").text("select password_hash from \"user\" where username_key='bob'")
    )
    assert new not in stored and stored.startswith(("scrypt:", "pbkdf2:"))


def test_login_redirects_only_to_local_paths(client: FlaskClient, make_user, post_form) -> None:
    make_user("bob")
    response = post_form("/login?next=//evil.example/", {"username": "bob", "password": TEST_PASSWORD})
    assert response.headers["Location"] == "/"


def test_healthz_needs_no_login_and_pages_send_security_headers(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_fresh_install_goes_to_setup_without_a_login_message(app: Flask, client: FlaskClient) -> None:
    for page in ("/", "/accounts/", "/admin/users", "/password"):
        response = client.get(page)
        assert response.headers["Location"] == "/setup", page
    shown = client.get("/setup").get_data(as_text=True)
    assert "Create the first admin" in shown and "Please log in" not in shown


def test_the_login_message_stays_once_there_is_a_user(client: FlaskClient, make_user) -> None:
    make_user("bob")
    response = client.get("/accounts/?x=1")
    assert response.headers["Location"] == "/login?next=%2Faccounts%2F%3Fx%3D1"
    assert "Please log in to access this page." in client.get(response.headers["Location"]).get_data(as_text=True)


def test_the_setup_page_shows_every_mistake_at_once(app: Flask, client: FlaskClient, post_form) -> None:
    token = setup.issue_token()
    wrong = post_form(
        "/setup",
        {"token": "not-the-token", "username": "ro\u202eot", "password": TEST_PASSWORD, "confirm": "different"},
    )
    page = wrong.get_data(as_text=True)
    assert "setup token: not valid" in page  # not hidden behind the others
    assert "Passwords differ." in page
    assert "username: 1 to 150 characters, no spaces, control or invisible characters" in page
    assert setup.needs_setup()
    short = post_form("/setup", {"token": token, "username": "root", "password": "short", "confirm": "short"})
    assert "setup token: not valid" not in short.get_data(as_text=True)
    assert "at least 8 characters" in short.get_data(as_text=True)
    empty = post_form("/setup", {"token": "", "username": "", "password": "", "confirm": ""}).get_data(as_text=True)
    assert empty.count("This field is required.") == 3 and "not valid" not in empty
    ok = post_form("/setup", {"token": token, "username": "root", "password": TEST_PASSWORD, "confirm": TEST_PASSWORD})
    assert ok.status_code == 302 and client.get("/").status_code == 200
