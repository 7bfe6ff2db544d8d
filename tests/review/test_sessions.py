"""Sessions: replay, fixation, rotation, inline links, throttle."""

from __future__ import annotations

import html
import re

from flask import Flask

from tests.conftest import TEST_PASSWORD, csrf_token
from tests.review.helpers import COOKIE, client_as, post, replay, token_of
from tests.servers.dovecot import Dovecot
from tests.views.test_mail_views import PNG, _rich_message
from webapp.services.identity import users
from webapp.services.reading import messages
from webapp.services.receiving import fetching

LIMIT = 5


def test_own_password_change_ends_a_stolen_copy_of_this_session(app: Flask, make_user) -> None:
    """A thief copied bob's cookie; bob notices and changes his password ('Other sessions were logged
    out'). The thief's copy is the *same* session, which is kept: the token is not rotated."""
    make_user("bob")
    bob = client_as(app, "bob")
    thief = replay(app, bob)
    assert thief.get("/").status_code == 200
    new = "a brand new password"
    response = post(bob, "/password", {"current": TEST_PASSWORD, "password": new, "confirm": new}, page="/password")
    assert response.status_code == 302
    assert bob.get("/").status_code == 200
    assert thief.get("/").status_code == 302, "the stolen cookie still opens pages after the password change"


def test_admin_end_other_sessions_on_own_page_ends_a_stolen_copy(app: Flask, make_user) -> None:
    boss = make_user("boss", role="admin")
    me = client_as(app, "boss")
    thief = replay(app, me)
    own = f"/admin/users/{boss.id}"
    assert post(me, f"{own}/sessions/end", {}, page=own).status_code == 302
    assert thief.get("/admin/users").status_code != 200, "'End all other sessions' leaves the stolen copy alive"


def test_anonymous_cookie_planted_before_login_is_not_the_session_after(app: Flask, make_user) -> None:
    make_user("bob")
    attacker = app.test_client()
    page = attacker.get("/login").get_data(as_text=True)
    planted = attacker.get_cookie(COOKIE).value
    victim = app.test_client()
    victim.set_cookie(COOKIE, planted)
    victim.post("/login", data={"csrf_token": csrf_token(page), "username": "bob", "password": TEST_PASSWORD})
    assert victim.get("/").status_code == 200
    assert attacker.get("/").status_code == 302  # the attacker's copy of the pre-login cookie opens nothing
    assert victim.get_cookie(COOKIE).value != planted


def test_logout_then_old_cookie_posts_nothing(app: Flask, make_user, make_account) -> None:
    make_user("boss", role="admin")
    boss = client_as(app, "boss")
    token = token_of(boss, "/admin/users")
    thief = replay(app, boss)
    post(boss, "/logout", {})
    response = thief.post("/admin/users", data={"csrf_token": token, "username": "evil", "password": "x" * 12})
    assert response.status_code in (302, 400, 403)
    assert users.find("evil") is None


def test_inline_link_is_bound_to_message_and_part(app: Flask, make_user, make_account, dovecot: Dovecot) -> None:
    account = make_account()
    reader = make_user("reader")
    users.grant(reader, account, read=True, send=False)
    dovecot.deliver("alice", _rich_message())
    dovecot.deliver("alice", _rich_message())
    fetching.fetch(account)
    first, second = messages.listing(account)
    client = client_as(app, "reader")
    page = html.unescape(client.get(f"/messages/{first.id}").get_data(as_text=True))
    (link,) = re.findall(rf"/messages/{first.id}/inline/(\d+)\?t=([^\"]+)", page)
    part, token = link
    anyone = app.test_client()
    assert anyone.get(f"/messages/{first.id}/inline/{part}?t={token}").data == PNG
    second_part = next(a.id for a in messages.ensure_parsed(second).attachments if a.content_id)
    non_inline = next(a.id for a in messages.ensure_parsed(first).attachments if not a.content_id)
    for url in (
        f"/messages/{second.id}/inline/{part}?t={token}",
        f"/messages/{second.id}/inline/{second_part}?t={token}",
        f"/messages/{first.id}/inline/{non_inline}?t={token}",
        f"/messages/{first.id}/inline/{part}?t={token[:-2]}",
        f"/messages/{first.id}/inline/{part}",
    ):
        assert anyone.get(url).status_code in (403, 404), url
    # grant revoked: the link dies too
    users.grant(reader, account, read=False, send=False)
    assert anyone.get(f"/messages/{first.id}/inline/{part}?t={token}").status_code == 403


def _login_status(client, username: str, password: str, **headers) -> int:
    page = client.get("/login").get_data(as_text=True)
    return client.post(
        "/login",
        data={"csrf_token": csrf_token(page), "username": username, "password": password},
        headers=headers,
    ).status_code


def test_forwarded_for_spoofing_without_proxy_fix_does_not_reset_the_count(app: Flask, make_user) -> None:
    make_user("bob")
    client = app.test_client()
    statuses = [
        _login_status(client, "bob", "wrong", **{"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"10.0.0.{n}"})
        for n in range(LIMIT + 2)
    ]
    assert statuses[-1] == 429, statuses


def test_forwarded_for_behind_one_trusted_proxy_uses_the_proxy_appended_address(make_app, make_user) -> None:
    make_user("bob")
    proxied = make_app(PROXY_FIX_X_FOR=1)
    client = proxied.test_client()
    statuses = [
        _login_status(client, "bob", "wrong", **{"X-Forwarded-For": f"198.51.100.{n}, 203.0.113.5"})
        for n in range(LIMIT + 2)
    ]
    assert statuses[-1] == 429, statuses


def test_username_variants_share_one_counter(app: Flask, make_user) -> None:
    make_user("bob")
    client = app.test_client()
    variants = ["bob", "BOB", "Bob ", " ｂｏｂ", "ＢＯＢ", "b\u006fb", "bo\u0062"]
    statuses = [_login_status(client, v, "wrong") for v in variants]
    assert statuses[LIMIT:] == [429] * (len(variants) - LIMIT), statuses
    assert _login_status(client, "bob", TEST_PASSWORD) == 429


def test_one_ipv6_slash64_gets_more_than_the_per_address_budget(app: Flask, make_user) -> None:
    """Every IPv6 host has a /64 of its own: counting per full address gives it 2**64 budgets."""
    make_user("bob")
    checked = 0
    for n in range(1, 31):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"2001:db8:1:2::{n:x}"
        if _login_status(client, "bob", f"guess {n}") == 401:
            checked += 1
    assert checked <= LIMIT * 4, f"{checked} password checks for one name from one /64"
