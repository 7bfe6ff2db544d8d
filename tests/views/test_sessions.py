"""Login sessions live on the server: logout, a new password, a new role, removal and an admin end them
for good — a copy of the cookie opens nothing afterwards — and inline-image links end with them."""

from __future__ import annotations

import hashlib
import html
import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text, update

from tests.conftest import TEST_PASSWORD, csrf_token
from tests.pages import PUBLIC, endpoint_urls, make_objects
from tests.servers.dovecot import Dovecot
from tests.views.test_mail_views import PNG, _rich_message
from webapp.extensions import db
from webapp.models import UserSession
from webapp.models.base import utcnow
from webapp.services.identity import users
from webapp.services.reading import messages
from webapp.services.receiving import fetching

COOKIE = "ec_session"


def _client_as(app: Flask, username: str, password: str = TEST_PASSWORD, addr: str = "127.0.0.1") -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    page = client.get("/login").get_data(as_text=True)
    response = client.post("/login", data={"csrf_token": csrf_token(page), "username": username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def _replay(app: Flask, client: FlaskClient) -> FlaskClient:
    """Another browser holding a copy of ``client``'s session cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, client.get_cookie(COOKIE).value)
    return thief


def _logout(client: FlaskClient) -> None:
    assert (
        client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))}).status_code
        == 302
    )


def _sessions_of(username: str) -> list[UserSession]:
    db.session.rollback()
    return list(db.session.scalars(select(UserSession).where(UserSession.user_id == users.get(username).id)))


def test_a_cookie_copied_before_logout_opens_no_page_after_it(
    app: Flask, make_user, make_account, dovecot: Dovecot
) -> None:
    urls = endpoint_urls(app, make_objects(make_user, make_account, dovecot, TEST_PASSWORD))
    boss = _client_as(app, "boss")
    copy = _replay(app, boss)
    for url in urls.values():
        # The copy works while the session lives.
        assert copy.get(url).status_code in (200, 302), url
    assert copy.get("/").status_code == 200

    _logout(boss)
    assert _sessions_of("boss") == []
    for endpoint, url in urls.items():
        if endpoint in PUBLIC:
            continue
        response = copy.get(url)
        assert response.status_code in (302, 403), (url, response.status_code)
        if response.status_code == 302:
            assert response.headers["Location"].startswith("/login"), url


def test_the_cookie_carries_a_random_token_that_is_stored_only_hashed(app: Flask, make_user) -> None:
    bob = make_user("bob")
    client = _client_as(app, "bob")
    data = app.session_interface.get_signing_serializer(app).loads(client.get_cookie(COOKIE).value)
    token = data["_user_id"]
    assert len(token) >= 40 and str(bob.id) != token
    (record,) = _sessions_of("bob")
    assert record.token_hash == hashlib.sha256(token.encode()).hexdigest()
    dump = " ".join(str(v) for v in db.session.execute(text("select * from user_session")).one())
    assert token not in dump
    assert record.remote_addr == "127.0.0.1" and record.user_agent.startswith("Werkzeug")
    assert record.expires_at - record.created_at == timedelta(hours=12)
    second = _client_as(app, "bob")
    assert len(_sessions_of("bob")) == 2  # each login is a session of its own
    _logout(second)
    assert client.get("/").status_code == 200  # logging out of one leaves the other


def test_login_starts_a_new_session_and_a_new_csrf_secret(app: Flask, client: FlaskClient, make_user) -> None:
    make_user("bob")
    before = csrf_token(client.get("/login").get_data(as_text=True))
    anonymous_cookie = client.get_cookie(COOKIE).value
    response = client.post("/login", data={"csrf_token": before, "username": "bob", "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert client.get_cookie(COOKIE).value != anonymous_cookie
    # The form token from before the login is refused afterwards, on every form.
    new = "a brand new password"
    stale = client.post(
        "/password", data={"csrf_token": before, "current": TEST_PASSWORD, "password": new, "confirm": new}
    )
    assert stale.status_code == 400 and "form expired" in stale.get_data(as_text=True)
    assert client.post("/logout", data={"csrf_token": before}).status_code == 400
    after = csrf_token(client.get("/").get_data(as_text=True))
    assert after != before
    assert client.post("/logout", data={"csrf_token": after}).status_code == 302
    # Logging out forgets the secret too: the logged-in page's token is of no use to the next login.
    again = client.post("/login", data={"csrf_token": after, "username": "bob", "password": TEST_PASSWORD})
    assert again.status_code == 400


def test_an_admin_resetting_a_password_ends_that_users_sessions(
    app: Flask, client: FlaskClient, make_user, login, post_form
) -> None:
    make_user("boss", role="admin")
    bob = make_user("bob")
    bob_client = _client_as(app, "bob")
    bob_copy = _replay(app, bob_client)
    login("boss")
    detail = f"/admin/users/{bob.id}"
    assert post_form(detail, {"password-password": "reset password 1"}, url=f"{detail}/password").status_code == 302
    assert bob_client.get("/").headers["Location"].startswith("/login")
    assert bob_copy.get("/").headers["Location"].startswith("/login")
    assert _sessions_of("bob") == []
    assert client.get("/admin/users").status_code == 200  # the admin's own session goes on


def test_a_role_change_and_the_end_sessions_action_end_sessions(
    app: Flask, client: FlaskClient, make_user, login, post_form
) -> None:
    boss = make_user("boss", role="admin")
    bob = make_user("bob")
    login("boss")
    detail = f"/admin/users/{bob.id}"
    bob_client = _client_as(app, "bob")
    assert post_form(detail, {"role-role": "user"}, url=f"{detail}/role").status_code == 302
    assert bob_client.get("/").status_code == 200  # the same role again changes nothing
    assert post_form(detail, {"role-role": "admin"}, url=f"{detail}/role").status_code == 302
    assert bob_client.get("/").status_code == 302  # promoted: log in again

    bob_client = _client_as(app, "bob", addr="192.0.2.7")
    page = client.get(detail).get_data(as_text=True)
    assert "192.0.2.7" in page and "End all sessions" in page
    ended = post_form(detail, {}, url=f"{detail}/sessions/end", follow_redirects=True)
    assert "1 session of bob ended." in ended.get_data(as_text=True)
    assert bob_client.get("/").status_code == 302
    assert "Not logged in anywhere." in client.get(detail).get_data(as_text=True)

    # On one's own page the action ends the other sessions and keeps this one.
    elsewhere = _client_as(app, "boss")
    own = f"/admin/users/{boss.id}"
    assert "End all other sessions" in client.get(own).get_data(as_text=True)
    done = post_form(own, {}, url=f"{own}/sessions/end", follow_redirects=True)
    assert "1 other session of yours ended; this one stays." in done.get_data(as_text=True)
    assert elsewhere.get("/").status_code == 302
    assert client.get("/").status_code == 200
    # Resetting one's own password on the admin page keeps this session too.
    elsewhere = _client_as(app, "boss")
    assert post_form(own, {"password-password": "reset password 2"}, url=f"{own}/password").status_code == 302
    assert elsewhere.get("/").status_code == 302 and client.get("/").status_code == 200


def test_removing_a_user_removes_their_sessions(app: Flask, make_user, login, post_form) -> None:
    make_user("boss", role="admin")
    bob_id = make_user("bob").id
    bob_client = _client_as(app, "bob")
    login("boss")
    assert post_form(f"/admin/users/{bob_id}", {}, url=f"/admin/users/{bob_id}/delete").status_code == 302
    assert db.session.scalar(select(UserSession).where(UserSession.user_id == bob_id)) is None
    assert bob_client.get("/").status_code == 302


def test_sessions_end_when_idle_and_at_their_absolute_end(app: Flask, make_user) -> None:
    make_user("bob")
    client = _client_as(app, "bob")
    (record,) = _sessions_of("bob")
    key, seen = record.token_hash, record.last_seen_at

    def set_times(**values) -> None:
        db.session.execute(update(UserSession).where(UserSession.token_hash == key).values(**values))
        db.session.commit()

    assert client.get("/").status_code == 200
    assert _sessions_of("bob")[0].last_seen_at == seen  # used within the minute: not written
    set_times(last_seen_at=utcnow() - timedelta(minutes=2))
    assert client.get("/").status_code == 200
    assert utcnow() - _sessions_of("bob")[0].last_seen_at < timedelta(minutes=1)  # touched

    set_times(last_seen_at=utcnow() - timedelta(hours=2, seconds=1))  # SESSION_IDLE_SECONDS by default
    assert client.get("/").headers["Location"].startswith("/login")
    assert _sessions_of("bob") == []

    client = _client_as(app, "bob")
    (record,) = _sessions_of("bob")
    key = record.token_hash
    set_times(expires_at=utcnow() - timedelta(seconds=1))  # used a second ago, but past its absolute end
    assert client.get("/").headers["Location"].startswith("/login")


def test_the_idle_limit_is_a_setting(make_app, make_user) -> None:
    make_user("bob")
    short = make_app(SESSION_IDLE_SECONDS=60, PERMANENT_SESSION_LIFETIME=600)
    client = _client_as(short, "bob")
    (record,) = _sessions_of("bob")
    assert record.expires_at - record.created_at == timedelta(minutes=10)
    db.session.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(seconds=61)))
    db.session.commit()
    assert client.get("/").status_code == 302


def test_inline_image_links_end_with_the_session(app: Flask, make_user, make_account, dovecot: Dovecot) -> None:
    account = make_account()
    users.grant(make_user("reader"), account, read=True, send=False)
    dovecot.deliver("alice", _rich_message())
    fetching.fetch(account)
    (message,) = messages.listing(account)
    reader = _client_as(app, "reader")
    other = _client_as(app, "reader")
    page = html.unescape(reader.get(f"/messages/{message.id}").get_data(as_text=True))
    (link,) = re.findall(rf"/messages/{message.id}/inline/\d+\?t=[^\"]+", page)
    token = reader.get_cookie(COOKIE).value
    assert token not in link

    anyone = app.test_client()  # the sandboxed frame sends no cookie; whoever holds the link is alike
    served = anyone.get(link)
    assert served.status_code == 200 and served.data == PNG
    assert served.headers["Cache-Control"] == "private, no-store"  # a cached copy would outlive the session
    _logout(reader)
    assert anyone.get(link).status_code == 403
    assert other.get("/").status_code == 200  # another session of the same user goes on
