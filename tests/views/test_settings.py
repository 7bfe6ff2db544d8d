"""Settings: each user picks the time zone of the pages' times (or leaves it to the browser)."""

from __future__ import annotations

from flask.testing import FlaskClient

from webapp.extensions import db
from webapp.services.identity import users


def test_a_user_chooses_a_time_zone_and_can_go_back_to_the_browsers(
    client: FlaskClient, make_user, login, post_form
) -> None:
    make_user("carol")
    login("carol")
    page = client.get("/settings/").get_data(as_text=True)
    assert '<a href="/settings/">Settings</a>' in page  # in the menu
    assert '<option selected value="">The browser&#39;s time zone</option>' in page
    assert '<option value="America/New_York">America/New York</option>' in page

    saved = post_form("/settings/", {"timezone": "Europe/Berlin"})
    assert saved.status_code == 302
    db.session.expire_all()
    assert users.get("carol").timezone == "Europe/Berlin"
    assert '<option selected value="Europe/Berlin">' in client.get("/settings/").get_data(as_text=True)

    wrong = post_form("/settings/", {"timezone": "Mars/Olympus_Mons"})
    assert wrong.status_code == 200 and "Not a valid choice" in wrong.get_data(as_text=True)
    db.session.expire_all()
    assert users.get("carol").timezone == "Europe/Berlin"

    post_form("/settings/", {"timezone": ""})
    db.session.expire_all()
    assert users.get("carol").timezone is None


def test_settings_need_a_login_and_a_csrf_token(client: FlaskClient, make_user, login) -> None:
    assert client.get("/settings/").status_code == 302
    make_user("carol")
    login("carol")
    assert client.post("/settings/", data={"timezone": "UTC"}).status_code == 400


def test_the_service_refuses_unknown_zones(make_user) -> None:
    import pytest

    from webapp.services.errors import Invalid
    from webapp.services.identity import preferences

    user = make_user("carol")
    with pytest.raises(Invalid, match="unknown name"):
        preferences.set_time_zone(user, "Mars/Olympus_Mons")
    preferences.set_time_zone(user, " Asia/Tokyo ")
    assert user.timezone == "Asia/Tokyo"
