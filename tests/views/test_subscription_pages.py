"""The subscription on the account page and the overview: state, since, last mail and last error shown;
admins subscribe and unsubscribe; readers only see; POP3 accounts are told why they cannot."""

from __future__ import annotations

import html

from flask.testing import FlaskClient

from tests.servers.dovecot import Dovecot
from webapp.extensions import db
from webapp.models import Subscription
from webapp.models.subscription import SubscriptionState
from webapp.services.identity import users
from webapp.services.receiving import subscriptions


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _subscription() -> Subscription | None:
    db.session.rollback()
    return db.session.query(Subscription).one_or_none()


def test_an_admin_subscribes_and_unsubscribes_from_the_account_page(
    client: FlaskClient, make_user, make_account, login, post_form
) -> None:
    account = make_account()
    make_user("root", role="admin")
    login("root")
    page = f"/accounts/{account.id}"
    assert "Subscribe to incoming emails" in _text(client.get(page))
    started = post_form(page, {"action": "start"}, url=f"{page}/subscription")
    assert started.status_code == 302 and started.headers["Location"].endswith("#subscription")
    subscription = _subscription()
    assert subscription is not None and subscription.active and subscription.state == SubscriptionState.WAITING
    shown = _text(client.get(page))
    assert "WAITING since" in shown and "no subscriber yet" in shown and "Unsubscribe" in shown
    assert "subscription WAITING since" in _text(client.get("/"))

    assert post_form(page, {"action": "stop"}, url=f"{page}/subscription").status_code == 302
    subscription = _subscription()
    assert subscription is not None and not subscription.active and subscription.state == SubscriptionState.STOPPED
    assert "Subscribe to incoming emails" in _text(client.get(page))
    assert post_form(page, {"action": "bogus"}, url=f"{page}/subscription").status_code == 400


def test_a_given_up_subscription_shows_why_and_can_be_started_again(
    client: FlaskClient, make_user, make_account, login, post_form
) -> None:
    account = make_account()
    subscription = subscriptions.subscribe(account)
    subscriptions.set_state(
        subscription.id, subscription.generation, SubscriptionState.SUBSCRIPTIONFAILED, "authentication failed", "h:1"
    )
    make_user("root", role="admin")
    login("root")
    page = f"/accounts/{account.id}"
    shown = _text(client.get(page))
    assert "SUBSCRIPTIONFAILED since" in shown and "authentication failed" in shown and "Start again" in shown
    assert "yes, but <strong>stopped</strong>" in shown and "Held by" not in shown
    overview = _text(client.get("/"))
    assert "The subscription to incoming mail stopped" in overview and "authentication failed" in overview
    post_form(page, {"action": "start"}, url=f"{page}/subscription")
    assert _subscription().state == SubscriptionState.WAITING  # type: ignore[union-attr]


def test_readers_see_the_state_but_cannot_change_it(
    client: FlaskClient, make_user, make_account, login, post_form
) -> None:
    account = make_account()
    subscriptions.subscribe(account)
    users.grant(make_user("reader"), account, read=True, send=False)
    login("reader")
    page = f"/accounts/{account.id}"
    shown = _text(client.get(page))
    assert "WAITING since" in shown and "Unsubscribe" not in shown
    assert post_form(page, {"action": "stop"}, url=f"{page}/subscription").status_code == 403
    assert _subscription().active  # type: ignore[union-attr]


def test_a_pop3_account_is_told_why_it_cannot_subscribe(
    client: FlaskClient, make_user, make_account, login, post_form, dovecot: Dovecot
) -> None:
    account = make_account(incoming_protocol="pop3", incoming_port=dovecot.pop3s_port)
    make_user("root", role="admin")
    login("root")
    page = f"/accounts/{account.id}"
    assert "POP3 cannot announce new mail" in _text(client.get(page))
    refused = post_form(page, {"action": "start"}, url=f"{page}/subscription", follow_redirects=True)
    assert "Not subscribed:" in _text(refused) and "only IMAP accounts can subscribe" in _text(refused)
    assert _subscription() is None


def test_saving_the_account_connects_its_subscription_again(
    client: FlaskClient, make_user, make_account, login, post_form
) -> None:
    account = make_account()
    subscription = subscriptions.subscribe(account)
    generation = subscription.generation
    subscriptions.set_state(subscription.id, generation, SubscriptionState.SUBSCRIPTIONFAILED, "auth failed", "h:1")
    make_user("root", role="admin")
    login("root")
    edit = f"/accounts/{account.id}/edit"
    form = client.get(edit).get_data(as_text=True)
    assert "Work" in form
    from webapp.services.account import accounts

    accounts.update(account, accounts.settings_of(account))  # what the form's Save does, then:
    assert subscriptions.settings_changed(account)
    restarted = _subscription()
    assert restarted is not None and restarted.state == SubscriptionState.WAITING
    assert restarted.generation > generation


def test_a_callback_that_cannot_be_imported_is_refused_at_once(make_account) -> None:
    import pytest

    from webapp.services.errors import Invalid

    account = make_account()
    with pytest.raises(Invalid, match="cannot be imported"):
        subscriptions.subscribe(account, "does.not.exist")
    assert _subscription() is None
