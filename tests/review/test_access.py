"""Access control on every route of the URL map: another account's ids, an account not granted, a read-only
grant, anonymous; plain and with HX-Request."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from tests.review.helpers import client_as, token_of
from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from webapp.services.events import dispatch, webhooks
from webapp.services.identity import users
from webapp.services.reading import messages
from webapp.services.receiving import fetchjobs, fetchruns


@pytest.fixture
def world(app: Flask, make_user, make_account, dovecot: Dovecot) -> dict:
    dovecot.add_user("bob", "bob-mail-pw")
    dovecot.deliver("alice", generated.make(1, "attachment"))
    dovecot.deliver("bob", generated.make(2, "attachment"))
    mine = make_account(name="Mine")
    theirs = make_account(name="Theirs", username="bob", password="bob-mail-pw")
    fetchruns.run(mine)
    fetchruns.run(theirs)
    make_user("boss", role="admin")
    reader = make_user("reader")
    users.grant(reader, mine, read=True, send=False)
    other = make_user("other")
    users.grant(other, theirs, read=True, send=True)
    out = {}
    for label, account in (("mine", mine), ("theirs", theirs)):
        message = messages.ensure_parsed(messages.listing(account, limit=1)[0])
        hook, _ = webhooks.add_webhook(account, "http://127.0.0.1:9/hook")
        delivery = dispatch.send_test(hook)
        out[label] = {
            "account_id": account.id,
            "message_id": message.id,
            "attachment_id": message.attachments[0].id,
            "webhook_id": hook.id,
            "delivery_id": delivery.id,
            "job_id": fetchjobs.enqueue(account),
            "user_id": other.id if label == "theirs" else reader.id,
            "topic": "webhooks",
            "server": "incoming",
            "action": "grant",
            "status": "queued",
        }
    return out


def _fill(rule, values: dict) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[^<>]+:)?{name}>", str(values[name]), path)
    return path


DESTRUCTIVE = ("auth.logout",)
OPEN = {
    "auth.login",
    "auth.first_run",
    "main.healthz",
    "static",
    "main.index",
    "help.page",
    "settings.index",
    "auth.change_password",
    "auth.logout",
}


@pytest.mark.parametrize("htmx", [False, True])
def test_reader_reaches_nothing_of_another_account_and_nothing_admin(app: Flask, world: dict, htmx: bool) -> None:
    client = client_as(app, "reader")
    token = token_of(client)
    headers = {"HX-Request": "true", "HX-Target": "body", "HX-Current-URL": "http://x/"} if htmx else {}
    leaks: list[str] = []
    mixes = {
        "theirs": world["theirs"],
        # mine's account with the other objects' ids, and the reverse
        "mixed1": {
            **world["mine"],
            **{k: world["theirs"][k] for k in ("message_id", "attachment_id", "job_id", "webhook_id", "delivery_id")},
        },
        "mixed2": {
            **world["theirs"],
            **{k: world["mine"][k] for k in ("message_id", "attachment_id", "job_id", "webhook_id", "delivery_id")},
        },
        "mixed3": {**world["mine"], "attachment_id": world["theirs"]["attachment_id"]},
    }
    needs = {
        "mixed1": lambda a: bool(a - {"account_id"}) and "account_id" in a,
        "mixed2": lambda a: "account_id" in a and bool(a - {"account_id", "server"}),
        "mixed3": lambda a: "attachment_id" in a,
        "theirs": lambda a: True,
    }
    for rule in app.url_map.iter_rules():
        if rule.endpoint in OPEN or rule.endpoint in DESTRUCTIVE:
            continue
        for label, values in mixes.items():
            if not needs[label](set(rule.arguments)):
                continue
            path = _fill(rule, values)
            for method in sorted({"GET", "POST"} & set(rule.methods)):
                if method == "GET":
                    response = client.get(path, headers=headers)
                else:
                    response = client.post(
                        path, data={"csrf_token": token, "url": "http://127.0.0.1:9/x"}, headers=headers
                    )
                body = response.get_data().decode("utf-8", "replace")
                if response.status_code < 400 or "Theirs" in body:
                    leaks.append(f"{label} {method} {path} ({rule.endpoint}) -> {response.status_code}")
    # Writes to a read-only grant's account
    mine = world["mine"]
    for method, path in (
        ("GET", f"/accounts/{mine['account_id']}/compose"),
        ("POST", f"/accounts/{mine['account_id']}/compose"),
        ("POST", f"/accounts/{mine['account_id']}/test"),
        ("POST", f"/accounts/{mine['account_id']}/test/incoming"),
        ("POST", f"/accounts/{mine['account_id']}/webhooks/{mine['webhook_id']}/test"),
        ("GET", f"/accounts/{mine['account_id']}/webhooks/{mine['webhook_id']}"),
        ("GET", f"/accounts/{mine['account_id']}/server-folders"),
        ("GET", f"/accounts/{mine['account_id']}/outbox/queued"),
        ("POST", f"/accounts/{mine['account_id']}/outbox/send-now"),
        ("POST", f"/accounts/{mine['account_id']}/outbox/retry-failed"),
        ("POST", f"/messages/{mine['message_id']}/answer"),
    ):
        data = {"csrf_token": token, "to": "x@example.test", "subject": "s", "text": "t"}
        response = (
            client.get(path, headers=headers) if method == "GET" else client.post(path, data=data, headers=headers)
        )
        if response.status_code < 400:
            leaks.append(f"read-only {method} {path} -> {response.status_code}")
    assert not leaks, "\n".join(sorted(leaks))


def test_account_page_of_a_reader_shows_no_webhook_urls_or_secrets(app: Flask, world: dict) -> None:
    client = client_as(app, "reader")
    page = client.get(f"/accounts/{world['mine']['account_id']}").get_data(as_text=True)
    assert "127.0.0.1:9/hook" not in page and "/hook" not in page


def test_anonymous_reaches_nothing(app: Flask, world: dict) -> None:
    client = app.test_client()
    leaks = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in {"auth.login", "auth.first_run", "main.healthz", "static", "auth.logout"}:
            continue
        path = _fill(rule, world["mine"])
        for method in sorted({"GET", "POST"} & set(rule.methods)):
            response = client.open(path, method=method)
            if response.status_code not in (302, 400, 401, 403, 404):
                leaks.append(f"{method} {path} -> {response.status_code}")
            elif response.status_code == 302 and "/login" not in response.headers["Location"]:
                leaks.append(f"{method} {path} -> 302 {response.headers['Location']}")
    assert not leaks, leaks


def test_query_string_ids_of_another_account(app: Flask, world: dict) -> None:
    client = client_as(app, "reader")
    mine, theirs = world["mine"], world["theirs"]
    for url in (
        f"/accounts/{mine['account_id']}/mailbox?job={theirs['job_id']}",
        f"/accounts/{mine['account_id']}/fetch/{theirs['job_id']}?batch=0",
        f"/messages/{mine['message_id']}?folder=INBOX&q=&after=",
    ):
        for headers in ({}, {"HX-Request": "true"}):
            response = client.get(url, headers=headers)
            body = response.get_data(as_text=True)
            assert response.status_code >= 400 or (
                "Theirs" not in body and f'/messages/{theirs["message_id"]}"' not in body
            ), url
