"""Admins create users, reset passwords, grant accounts and remove users; users see only their grants."""

from __future__ import annotations

from flask.testing import FlaskClient

from tests.conftest import TEST_PASSWORD, csrf_token
from webapp.services.identity import users


def test_admin_manages_a_user_and_grants(client: FlaskClient, make_user, make_account, login, post_form) -> None:
    make_user("boss", role="admin")
    work = make_account(name="Work")
    make_account(name="Private", address="private@example.test")
    login("boss")
    created = post_form("/admin/users", {"username": "bob", "password": TEST_PASSWORD})
    assert created.status_code == 302
    bob = users.get("bob")
    detail = f"/admin/users/{bob.id}"
    duplicate = post_form("/admin/users", {"username": "BOB", "password": TEST_PASSWORD})
    assert "already exists" in duplicate.get_data(as_text=True)
    granted = post_form(detail, {"grant-account_id": work.id, "grant-can_read": "y"}, url=f"{detail}/grant")
    assert granted.status_code == 302
    assert [(g.account.name, g.can_read, g.can_send) for g in users.grants_of(bob)] == [("Work", True, False)]
    post_form(detail, {"password-password": "reset password 1"}, url=f"{detail}/password")

    bob_client = client.application.test_client()
    page = bob_client.get("/login").get_data(as_text=True)
    bob_client.post("/login", data={"csrf_token": csrf_token(page), "username": "bob", "password": "reset password 1"})
    overview = bob_client.get("/").get_data(as_text=True)
    assert "Work" in overview and "Private" not in overview
    assert bob_client.get(f"/accounts/{work.id}").status_code == 200
    private = next(a for a in users.visible_accounts(users.get("boss")) if a.name == "Private")
    assert bob_client.get(f"/accounts/{private.id}").status_code == 403
    assert bob_client.get(f"/accounts/{work.id}/edit").status_code == 403

    revoked = post_form(detail, {}, url=f"{detail}/revoke/{work.id}")
    assert revoked.status_code == 302
    assert bob_client.get(f"/accounts/{work.id}").status_code == 403
    removed = post_form(detail, {}, url=f"{detail}/delete")
    assert removed.status_code == 302
    assert users.find("bob") is None
    assert bob_client.get("/").status_code == 302  # the removed user's session ends


def test_the_last_admin_cannot_be_removed_or_demoted(client: FlaskClient, make_user, login, post_form) -> None:
    boss = make_user("boss", role="admin")
    login("boss")
    page = f"/admin/users/{boss.id}"
    response = post_form(page, {"role-role": "user"}, url=f"{page}/role")
    assert "last admin" in response.get_data(as_text=True)
    assert users.get("boss").is_admin


def test_only_admins_end_sessions_and_only_with_the_form_token(
    client: FlaskClient, make_user, login, post_form
) -> None:
    make_user("boss", role="admin")
    bob = make_user("bob")
    carol = make_user("carol")
    login("bob")
    url = f"/admin/users/{carol.id}/sessions/end"
    assert post_form("/", {}, url=url).status_code == 403
    assert client.post(url).status_code == 400  # no CSRF token
    client.post("/logout", data={"csrf_token": csrf_token(client.get("/").get_data(as_text=True))})
    assert client.post(f"/admin/users/{bob.id}/sessions/end").status_code == 400
    login("boss")
    assert post_form("/", {}, url="/admin/users/999999/sessions/end").status_code == 404
