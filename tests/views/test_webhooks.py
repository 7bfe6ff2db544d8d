"""Webhooks on the account page: the secret shown once, test events, the delivery log, redeliveries, help.

Each action works as a plain form post and as HTMX (the fragment accounts/_webhooks.html).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import csrf_token
from tests.servers.webhookreceiver import Receiver
from webapp.extensions import db
from webapp.models import Delivery
from webapp.services.events import callbacks, dispatch, webhooks
from webapp.services.identity import users

HX = {"HX-Request": "true"}


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def admin_page(client: FlaskClient, make_user, login, make_account):
    """Log in as an admin; return the account and a function posting a form of its page."""
    account = make_account()
    make_user("boss", role="admin")
    login("boss")
    page = f"/accounts/{account.id}"

    def post(url: str, data: dict[str, str] | None = None, htmx: bool = False):
        token = csrf_token(client.get(page).get_data(as_text=True))
        return client.post(url, data={"csrf_token": token, **(data or {})}, headers=HX if htmx else {})

    return account, page, post


def _ids(html: str) -> Counter[str]:
    return Counter(re.findall(r'\sid="([^"]+)"', html))


def test_adding_shows_the_secret_once_in_a_panel(client: FlaskClient, admin_page, receiver: Receiver) -> None:
    account, page, post = admin_page
    added = post(f"{page}/webhooks", {"url": f" {receiver.url('/in?token=abc')} ", "event_fetch": "y"})
    assert added.status_code == 200
    html = added.get_data(as_text=True)
    (hook,) = webhooks.webhooks(account)
    assert hook.url == receiver.url("/in?token=abc") and hook.events == ["fetch"]
    secret = re.search(r'<code id="webhook-secret">([^<]+)</code>', html).group(1)
    assert 'id="webhook-secret-panel"' in html and 'data-copy="webhook-secret"' in html
    assert 'class="flash' not in html  # in a panel of its own, not a flash
    assert '<script src="/static/webhooks.js" defer></script>' in html
    assert added.headers["Cache-Control"] == "no-store"
    assert secret not in client.get(page).get_data(as_text=True)  # shown only once
    script = client.get("/static/webhooks.js")
    assert script.status_code == 200 and b"navigator.clipboard" in script.get_data()
    script.close()

    fragment = post(f"{page}/webhooks", {"url": receiver.url("/other"), "event_error": "y"}, htmx=True)
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="webhooks"') and "<html" not in html
    assert "HX-Request" in fragment.headers["Vary"] and 'id="webhook-secret"' in html

    # The secret signs what the receiver gets.
    second = webhooks.webhooks(account)[1]
    signing = re.search(r'<code id="webhook-secret">([^<]+)</code>', html).group(1)
    dispatch.send_test(second)
    from webapp.adapters import webhook

    body, header = receiver.requests[0].body, receiver.requests[0].headers["x-emailconnector-signature"]
    assert webhook.verify(signing, body, header)


def test_a_refused_url_is_explained_in_the_form(admin_page, app) -> None:
    account, page, post = admin_page
    for url, reason in [("ftp://127.0.0.1/x", "only http:// and https://"),
                        ("http://169.254.169.254/latest/meta-data/?k=SECRET", "never allowed")]:  # fmt: skip
        plain = post(f"{page}/webhooks", {"url": url, "event_fetch": "y"})
        assert plain.status_code == 400 and reason in plain.get_data(as_text=True)
        htmx = post(f"{page}/webhooks", {"url": url, "event_fetch": "y"}, htmx=True)
        assert htmx.status_code == 200 and reason in htmx.get_data(as_text=True)  # HTMX swaps only 2xx
        errors = re.findall(r'<p class="error"[^>]*>([^<]*)</p>', plain.get_data(as_text=True))
        assert errors and not any("SECRET" in error for error in errors)
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    refused = post(f"{page}/webhooks", {"url": "http://127.0.0.1:9/in", "event_fetch": "y"})
    assert "WEBHOOK_ALLOW_PRIVATE is off" in refused.get_data(as_text=True)
    assert webhooks.webhooks(account) == []


def test_send_test_event_shows_the_result_and_logs_it(client: FlaskClient, admin_page, receiver: Receiver) -> None:
    account, page, post = admin_page
    hook, _ = webhooks.add_webhook(account, receiver.url("/in/SECRET"), ["fetch"])

    plain = post(f"{page}/webhooks/{hook.id}/test")
    assert plain.status_code == 302 and plain.headers["Location"].endswith(f"{page}#webhook-{hook.id}")
    shown = client.get(page).get_data(as_text=True)
    assert re.search(r"Test event delivered in \d+ ms\.", shown)
    assert len(receiver.requests) == 1

    receiver.answer(500)
    fragment = post(f"{page}/webhooks/{hook.id}/test", htmx=True).get_data(as_text=True)
    assert fragment.lstrip().startswith('<section id="webhooks"')
    assert f"Test event failed: http://127.0.0.1:{receiver.port} answered 500" in fragment
    log = fragment.split("Delivery log")[1]
    assert log.count("<tr data-delivery=") == 2
    assert re.search(r'badge bad">failed</span>.*?\d+ ms</td>', log, re.S)
    assert re.search(r'badge">delivered</span>.*?\d+ ms</td>', log, re.S)
    assert "SECRET" not in fragment.replace(hook.url, "")  # the URL itself is shown to admins, errors never


def test_redeliver_from_the_log(client: FlaskClient, admin_page, receiver: Receiver) -> None:
    account, page, post = admin_page
    hook, _ = webhooks.add_webhook(account, receiver.url("/in"), ["error"])
    receiver.answer(404)
    callbacks.failed(account, "boom", None)
    (failed,) = db.session.scalars(select(Delivery))
    shown = client.get(page).get_data(as_text=True)
    action = f"{page}/webhooks/{hook.id}/deliveries/{failed.id}/redeliver"
    assert f'action="{action}"' in shown

    receiver.answer(200)
    fragment = post(action, htmx=True).get_data(as_text=True)
    assert re.search(rf"Redelivery of #{failed.id} delivered in \d+ ms\.", fragment)
    assert f"(redelivery of #{failed.id})" in fragment
    assert len(receiver.requests) == 2
    assert receiver.requests[1].headers["x-emailconnector-delivery"] == failed.delivery_id

    plain = post(action)  # again, as a plain post
    assert plain.status_code == 302
    assert len(db.session.scalars(select(Delivery)).all()) == 3

    log_page = client.get(f"{page}/webhooks/{hook.id}").get_data(as_text=True)
    assert log_page.count("<tr data-delivery=") == 3 and 'name="back" value="log"' in log_page
    back = post(action, {"back": "log"})
    assert back.headers["Location"].endswith(f"{page}/webhooks/{hook.id}")


def test_remove(client: FlaskClient, admin_page, receiver: Receiver) -> None:
    account, page, post = admin_page
    first, _ = webhooks.add_webhook(account, receiver.url("/a"))
    second, _ = webhooks.add_webhook(account, receiver.url("/b"))
    assert post(f"{page}/webhooks/{first.id}/delete").status_code == 302
    fragment = post(f"{page}/webhooks/{second.id}/delete", htmx=True).get_data(as_text=True)
    assert "Webhook removed." in fragment and "No webhooks yet." in fragment
    assert webhooks.webhooks(account) == []


def test_every_webhook_route_checks_the_account_and_the_role(
    client: FlaskClient, make_user, login, make_account, receiver: Receiver
) -> None:
    mine, theirs = make_account(), make_account(name="Theirs")
    hook, _ = webhooks.add_webhook(theirs, receiver.url("/in"))
    delivery = dispatch.send_test(hook)
    make_user("boss", role="admin")
    login("boss")
    token = csrf_token(client.get(f"/accounts/{mine.id}").get_data(as_text=True))
    routes = [
        f"/accounts/{mine.id}/webhooks/{hook.id}/test",
        f"/accounts/{mine.id}/webhooks/{hook.id}/delete",
        f"/accounts/{mine.id}/webhooks/{hook.id}/deliveries/{delivery.id}/redeliver",
        f"/accounts/{theirs.id}/webhooks/{hook.id}/deliveries/999999/redeliver",
        f"/accounts/{mine.id}/webhooks/99999999999999999999/test",
    ]
    for url in routes:
        for headers in ({}, HX):
            assert client.post(url, data={"csrf_token": token}, headers=headers).status_code == 404, url
    assert client.get(f"/accounts/{mine.id}/webhooks/{hook.id}").status_code == 404
    assert client.post(f"/accounts/{theirs.id}/webhooks/{hook.id}/test").status_code == 400  # no CSRF token
    assert len(receiver.requests) == 1

    client.post("/logout", data={"csrf_token": token})
    reader = make_user("reader")
    users.grant(reader, theirs, read=True, send=False)
    login("reader")
    page = client.get(f"/accounts/{theirs.id}").get_data(as_text=True)
    assert "webhooks" not in page.lower() and hook.url not in page
    token = csrf_token(page) if "csrf_token" in page else ""
    for url in [f"/accounts/{theirs.id}/webhooks", f"/accounts/{theirs.id}/webhooks/{hook.id}/test",
                f"/accounts/{theirs.id}/webhooks/{hook.id}/deliveries/{delivery.id}/redeliver"]:  # fmt: skip
        assert client.post(url, data={"csrf_token": token, "url": "http://127.0.0.1:9/"}).status_code == 403
    assert client.get(f"/accounts/{theirs.id}/webhooks/{hook.id}").status_code == 403
    assert len(receiver.requests) == 1


def test_users_and_admins_see_webhook_errors_by_scheme_and_host_only(
    client: FlaskClient, make_user, login, make_account, receiver: Receiver
) -> None:
    account = make_account()
    webhooks.add_webhook(account, receiver.url("/in/PATH-SECRET?token=QUERY-SECRET"), ["error"])
    receiver.answer(302, Location="http://127.0.0.1:9/next/SECRET")
    callbacks.failed(account, "boom", None)
    reader = make_user("reader")
    users.grant(reader, account, read=True, send=False)
    make_user("boss", role="admin")
    for who in ("reader", "boss"):
        login(who)
        logs = client.get(f"/accounts/{account.id}/errors").get_data(as_text=True)
        assert f"error delivery to http://127.0.0.1:{receiver.port} failed" in logs
        assert "SECRET" not in logs
        client.post("/logout", data={"csrf_token": csrf_token(logs)})
    login("boss")
    page = client.get(f"/accounts/{account.id}").get_data(as_text=True)
    log = page.split("Delivery log")[1]
    assert "redirects are not followed" in log and "SECRET" not in log


def test_ids_are_unique_on_the_account_page(admin_page, receiver: Receiver, client: FlaskClient) -> None:
    account, page, post = admin_page
    for path in ("/a", "/b"):
        hook, _ = webhooks.add_webhook(account, receiver.url(path))
        dispatch.send_test(hook)
    callbacks.failed(account, "boom", "tests.views.test_webhooks.on_error")
    for html in [client.get(page).get_data(as_text=True),
                 post(f"{page}/webhooks", {"url": receiver.url("/c"), "event_fetch": "y"}).get_data(as_text=True),
                 post(f"{page}/webhooks/{hook.id}/test", htmx=True).get_data(as_text=True)]:  # fmt: skip
        duplicates = {name: n for name, n in _ids(html).items() if n > 1}
        assert duplicates == {}
        for label in re.findall(r'<label for="([^"]+)"', html):
            assert f'id="{label}"' in html
    assert "Python callback deliveries" in client.get(page).get_data(as_text=True)


def on_error(reason: str) -> None:
    pass


def test_the_hint_links_to_the_help_page(client: FlaskClient, admin_page, make_user, login) -> None:
    _account, page, _post = admin_page
    shown = client.get(page).get_data(as_text=True)
    assert 'href="/help/webhooks"' in shown and "docs/webhooks.md" not in shown
    helped = client.get("/help/webhooks")
    html = helped.get_data(as_text=True)
    assert helped.status_code == 200
    assert '<h1 id="callbacks-and-webhooks">Callbacks and webhooks</h1>' in html
    assert '<h3 id="verifying-the-signature">' in html and "<pre><code" in html and "<table>" in html
    assert "<code>X-EmailConnector-Delivery</code>" in html and "<script" not in html.split("<main>")[1]
    assert client.get("/help/nothing").status_code == 404
    assert client.get("/help/..%2Fsecret_key").status_code == 404
    client.post("/logout", data={"csrf_token": csrf_token(shown)})
    assert client.get("/help/webhooks").status_code == 302  # to the login page
