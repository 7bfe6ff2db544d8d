"""Webhooks in the service: where they may point, what error texts show, test events and redeliveries."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from tests.servers.webhookreceiver import Receiver
from webapp.adapters import webhook
from webapp.extensions import db
from webapp.models import Delivery, ErrorLog, Webhook
from webapp.models.base import utcnow
from webapp.services.account import errorlog
from webapp.services.errors import Invalid, NotFound
from webapp.services.events import callbacks, dispatch, webhooks
from webapp.services.platform import secretstore

SECRET_PATH = "/in/PATH-SECRET?token=QUERY-SECRET"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def _stored_hook(account, url: str) -> Webhook:
    """A webhook written straight to the table (as an older version, or another process, could have)."""
    hook = Webhook(account_id=account.id, url=url, secret_encrypted=secretstore.encrypt("x" * 32), events=["error"])
    db.session.add(hook)
    db.session.commit()
    return hook


def _texts(account) -> list[str]:
    """Every text about deliveries a user or an admin can see: the Error logs and the deliveries' errors."""
    logs = [e.message for e in errorlog.entries(account)]
    return logs + [d.last_error or "" for d in webhooks.deliveries(account)]


# --- where a webhook may point -----------------------------------------------------------------------------


def test_add_checks_the_url(make_account, app: Flask) -> None:
    account = make_account()
    refused = [
        "ftp://127.0.0.1/x",
        "file:///etc/passwd",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/",
        "http://2852039166/",
        "http://user:pw@127.0.0.1/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1/a b",
        "javascript:alert(1)",
    ]
    for url in refused:
        with pytest.raises(Invalid, match="URL"):
            webhooks.add_webhook(account, url + "?token=SECRET")
    assert webhooks.webhooks(account) == []

    webhooks.add_webhook(account, "http://127.0.0.1:8080/hook")  # on-premises receivers: allowed by default
    webhooks.add_webhook(account, "http://10.0.0.5/hook")
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    for url in ["http://127.0.0.1:8080/hook", "http://localhost/hook", "http://10.0.0.5/hook", "http://[::1]/"]:
        with pytest.raises(Invalid, match="WEBHOOK_ALLOW_PRIVATE") as caught:
            webhooks.add_webhook(account, url)
        assert "hook" not in str(caught.value).replace("webhook", "")
    hook, _ = webhooks.add_webhook(account, "https://hooks.example.com/in", ["fetch"])
    assert hook.url == "https://hooks.example.com/in"


def test_the_setting_comes_from_config_or_the_environment(make_app, monkeypatch: pytest.MonkeyPatch) -> None:
    assert make_app().config["WEBHOOK_ALLOW_PRIVATE"] is True
    for value, expected in [("false", False), ("False", False), ("0", False), ("off", False), ("true", True)]:
        monkeypatch.setenv("EMAILCONNECTOR_WEBHOOK_ALLOW_PRIVATE", value)
        with make_app().app_context():
            assert webhooks.allow_private() is expected, value


def test_delivery_checks_the_target_again(make_account, app: Flask, receiver: Receiver) -> None:
    """A webhook added while private targets were allowed, or stored with a bad scheme, is not contacted."""
    account = make_account()
    webhooks.add_webhook(account, receiver.url(SECRET_PATH), ["error"])
    _stored_hook(account, f"ftp://127.0.0.1:{receiver.port}{SECRET_PATH}")
    _stored_hook(account, f"http://169.254.169.254{SECRET_PATH}")
    app.config["WEBHOOK_ALLOW_PRIVATE"] = False
    callbacks.failed(account, "boom", None)
    assert receiver.connections == 0
    failed = db.session.scalars(select(Delivery).order_by(Delivery.id)).all()
    assert [(d.status, d.attempts) for d in failed] == [("failed", 1)] * 3  # refused for good, not retried
    assert "private or loopback" in failed[0].last_error
    assert "only http:// and https://" in failed[1].last_error
    assert "never allowed" in failed[2].last_error
    assert len([e for e in errorlog.entries(account) if e.operation == "callback"]) == 3

    app.config["WEBHOOK_ALLOW_PRIVATE"] = True
    callbacks.failed(account, "boom again", None)
    assert len(receiver.requests) == 1


# --- redirects, through the whole path ---------------------------------------------------------------------


@pytest.mark.parametrize("location", ["ftp://127.0.0.1:{port}/x", "http://127.0.0.1:{port}/landing?t=1"])
def test_a_redirected_delivery_fails_at_once_and_the_target_is_never_contacted(
    make_account, receiver: Receiver, other: Receiver, location: str, caplog: pytest.LogCaptureFixture
) -> None:
    account = make_account()
    webhooks.add_webhook(account, receiver.url(SECRET_PATH), ["error"])
    receiver.answer(302, Location=location.format(port=other.port))
    with caplog.at_level(logging.INFO):
        callbacks.failed(account, "boom", None)
    (delivery,) = db.session.scalars(select(Delivery))
    assert (delivery.status, delivery.attempts) == ("failed", 1)
    scheme = location.split(":")[0]
    assert f"a redirect to {scheme}://127.0.0.1:{other.port}" in delivery.last_error
    assert other.connections == 0 and len(receiver.requests) == 1
    (entry,) = errorlog.entries(account)
    assert entry.message.startswith(f"error delivery to http://127.0.0.1:{receiver.port} failed: ")
    for text in [*_texts(account), caplog.text]:
        assert "SECRET" not in text and "/in" not in text and "landing" not in text


# --- error texts: scheme and host only, for users and admins alike ----------------------------------------


def test_no_error_text_shows_a_webhook_path_or_query(
    make_account, app: Flask, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    account = make_account()
    webhooks.add_webhook(account, receiver.url(SECRET_PATH), ["fetch", "error"])
    with caplog.at_level(logging.INFO):
        for status in (500, 404, 410, 301):  # retried, then permanent ones
            receiver.answer(status, Location="/moved/SECRET")
            callbacks.failed(account, f"boom {status}", None)
        receiver.answer(503)
        pending = db.session.scalars(select(Delivery).where(Delivery.status == "pending")).one()
        for _ in range(dispatch.MAX_ATTEMPTS):  # until it gives up and writes the Error logs
            pending.next_attempt_at = utcnow() - timedelta(seconds=1)
            db.session.commit()
            dispatch.deliver_due(account)
        app.config["WEBHOOK_ALLOW_PRIVATE"] = False
        callbacks.failed(account, "refused", None)
        with pytest.raises(Invalid) as caught:
            callbacks.check_callback(account, f"http://127.0.0.1:9{SECRET_PATH}")
    texts = [*_texts(account), caplog.text, str(caught.value)]
    assert len([e for e in errorlog.entries(account) if e.operation == "callback"]) == 5
    for text in texts:
        assert "SECRET" not in text and "/in" not in text, text
    assert f"http://127.0.0.1:{receiver.port}" in "".join(texts)


def test_migration_cuts_webhook_urls_in_old_error_texts(tmp_path, make_app) -> None:
    """Error texts written before this version kept whole URLs; the migration leaves scheme and host."""
    from flask_migrate import downgrade, upgrade
    from sqlalchemy import text

    other = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'old.db'}")
    with other.app_context():
        upgrade(revision="0004")
        # Raw SQL: the models describe the newest schema, not revision 0004's.
        db.session.execute(
            text(
                "INSERT INTO email_account (name, name_key, address, display_name, username, incoming_protocol, "
                "incoming_security, incoming_host, incoming_port, folder, outgoing_host, outgoing_port, "
                "outgoing_security, smtp_auth, timeout, tls_verify, fetch_count, fetch_strategy, fetch_order, "
                "batch_size, folders, max_message_size, fetch_every_minutes, after_fetch, after_fetch_folder, "
                "sanitize_html, created_at) VALUES ('W', 'w', 'w@x.test', '', 'w', 'imap', 'tls', 'mail.test', 993, "
                "'INBOX', 'mail.test', 587, 'starttls', 'login', 30, 'system', 50, 'latest', 'newest', 100, "
                "'[\"INBOX\"]', 0, 0, 'none', '', 1, '2025-01-01')"
            )
        )
        account_id = db.session.execute(text("SELECT id FROM email_account")).scalar()
        values = {
            "a": account_id,
            "m": "fetch delivery to https://hooks.test/in/SECRET?k=SECRET failed: https://hooks.test/in/S answered 410",
        }
        db.session.execute(
            text(
                "INSERT INTO error_log (account_id, created_at, operation, message, detail) "
                "VALUES (:a, '2025-01-01', 'callback', :m, 'd'), (:a, '2025-01-01', 'fetch', :m, 'd')"
            ),
            values,
        )
        db.session.execute(
            text(
                "INSERT INTO delivery (delivery_id, target, account_id, event, payload, status, attempts, last_error, "
                "created_at) VALUES ('1:x', 'https://hooks.test/in/S', :a, 'fetch', '{}', 'failed', 1, :m, "
                "'2025-01-01')"
            ),
            values,
        )
        db.session.commit()
        upgrade()
        callback, fetch = db.session.execute(text("SELECT message FROM error_log ORDER BY operation")).scalars()
        assert callback == "fetch delivery to https://hooks.test failed: https://hooks.test answered 410"
        assert fetch == values["m"]  # only the callback entries are webhook texts
        assert db.session.execute(text("SELECT last_error FROM delivery")).scalar() == callback
        downgrade(revision="0004")
        db.session.remove()
        db.engine.dispose()


# --- a test event, a redelivery --------------------------------------------------------------------------------


def test_a_test_event_is_delivered_at_once_and_recorded(make_account, receiver: Receiver) -> None:
    account = make_account()
    hook, secret = webhooks.add_webhook(account, receiver.url("/in"), ["fetch"])
    delivery = dispatch.send_test(hook)
    assert (delivery.status, delivery.attempts, delivery.event) == ("delivered", 1, "test")
    assert delivery.duration_ms is not None and delivery.duration_ms >= 0
    (request,) = receiver.requests
    assert webhook.verify(secret, request.body, request.headers["x-emailconnector-signature"])
    payload = json.loads(request.body)
    assert payload["event"] == "test" and payload["webhook"] == {"id": hook.id}
    assert payload["delivery_id"] == request.headers["x-emailconnector-delivery"] == delivery.delivery_id
    assert webhooks.webhook_deliveries(hook) == [delivery]

    receiver.answer(503)  # a test is one attempt: failed at once, never retried, not in the Error logs
    failed = dispatch.send_test(hook)
    assert (failed.status, failed.attempts) == ("failed", 1) and "answered 503" in failed.last_error
    failed.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    assert dispatch.deliver_due() == 0 and len(receiver.requests) == 2
    assert errorlog.entries(account) == []


def test_redelivery_sends_the_same_event_again_as_a_new_record(make_account, receiver: Receiver) -> None:
    account = make_account()
    hook, secret = webhooks.add_webhook(account, receiver.url("/in"), ["error"])
    receiver.answer(410)
    callbacks.failed(account, "boom", None)
    (original,) = db.session.scalars(select(Delivery))
    assert original.status == "failed"

    receiver.answer(200)
    again = dispatch.redeliver(original)
    assert again.id != original.id and again.redelivery_of == original.id
    assert (again.status, again.attempts, again.event) == ("delivered", 1, "error")
    assert again.duration_ms is not None
    first, second = receiver.requests
    assert first.body == second.body  # the same payload, with the same delivery id
    assert second.headers["x-emailconnector-delivery"] == original.delivery_id == again.event_id
    assert webhook.verify(secret, second.body, second.headers["x-emailconnector-signature"])
    db.session.refresh(original)
    assert (original.status, original.attempts) == ("failed", 1)  # the original record is left as it was

    assert dispatch.redeliver(again).status == "delivered"  # a delivered one may be sent again too
    assert len(receiver.requests) == 3
    assert [d.id for d in webhooks.webhook_deliveries(hook)][-1] == original.id


def test_what_cannot_be_redelivered(make_account, receiver: Receiver) -> None:
    account = make_account()
    webhooks.add_webhook(account, receiver.url("/in"), ["error"])
    receiver.answer(503)
    callbacks.failed(account, "boom", None)
    (pending,) = db.session.scalars(select(Delivery))
    with pytest.raises(Invalid, match="still pending"):
        dispatch.redeliver(pending)
    callbacks.failed(account, "boom", "tests.services.test_webhooks.on_error")
    dotted = db.session.scalars(select(Delivery).where(Delivery.webhook_id.is_(None))).one()
    with pytest.raises(Invalid, match="only webhook deliveries"):
        dispatch.redeliver(dotted)
    with pytest.raises(NotFound):
        webhooks.get_delivery(2**70)
    with pytest.raises(NotFound):
        webhooks.get_webhook(0)
    other = make_account(name="Other")
    with pytest.raises(NotFound):
        webhooks.get_delivery(pending.id, other)


def on_error(reason: str) -> None:
    pass


def test_removing_a_webhook_removes_its_log(make_account, receiver: Receiver) -> None:
    account = make_account()
    hook, _ = webhooks.add_webhook(account, receiver.url("/in"))
    dispatch.send_test(hook)
    webhooks.remove_webhook(None, hook.id)
    assert db.session.scalars(select(Delivery)).all() == [] and webhooks.all_webhooks() == []
    assert db.session.scalars(select(ErrorLog)).all() == []
