"""Every route, with hostile path and query values, as an admin, a user and anonymously: never a 5xx.

The routes come from the app's URL map, so a new route is covered the day it is added. Path arguments get
real ids and hostile ones; every query parameter any view reads and every form field any form has get
each hostile value at once; POSTs carry a valid CSRF token, so the hostile values reach the views.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from flask_wtf import FlaskForm

import webapp.views
from tests.conftest import TEST_PASSWORD, csrf_token
from tests.servers import messages as generated
from tests.servers.dovecot import Dovecot
from webapp.services.events import webhooks
from webapp.services.identity import users
from webapp.services.reading import messages
from webapp.services.receiving import fetching

HOSTILE = [
    "",
    "0",
    "-1",
    "9223372036854775807",
    "9223372036854775808",
    "99999999999999999999",
    "1e309",
    "NaN",
    "2024-13-45",
    "0001-01-01",
    "9999-12-31",
    "2024-01-01T00:00:00|1",
    "2024-01-01T00:00:00+00:00|99999999999999999999",
    "9999-12-31T23:59:59+00:00|1",
    "0001-01-01T00:00:00-14:00|1",
    "a.b",
    "../../etc/passwd",
    "\u202egnp.exe",
    "é\u0301x",
    "'\"<script>",
    "x\r\nInjected: yes",
    "\x00",
    "x" * 5000,
]
HOSTILE_IDS = ["0", "3000000000", "9223372036854775807", "9223372036854775808", "99999999999999999999"]
HOSTILE_STRINGS = ["a.b", "x" * 300, "é", "%00", "..%2F", "%E2%80%AE"]
QUERY_NAMES = re.compile(r"""request\.args\.get\(\s*["'](\w+)["']""")
# Run last (they end the session or remove the objects the other requests use).
LAST = ("auth.logout", "accounts.delete", "admin.delete")


def _query_names() -> list[str]:
    names: set[str] = set()
    for path in __import__("pathlib").Path(webapp.views.__file__).parent.rglob("*.py"):
        names.update(QUERY_NAMES.findall(path.read_text()))
    return sorted(names)


def _form_fields() -> list[str]:
    names: set[str] = set()
    for info in pkgutil.walk_packages(webapp.views.__path__, "webapp.views."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, FlaskForm) and value is not FlaskForm:
                names.update(name for name in dir(value) if not name.startswith("_") and _is_field(value, name))
    return sorted(names - {"csrf_token", "meta"})


def _is_field(form: type, name: str) -> bool:
    return hasattr(getattr(form, name, None), "field_class")


def _urls(app: Flask, real: dict[str, str]) -> Iterator[tuple[str, str, str]]:
    """(endpoint, method, path) for every rule, with real and hostile values for each argument."""
    rules = sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint in LAST, r.endpoint, r.rule))
    for rule in rules:
        if rule.endpoint == "static":
            continue
        for method in sorted({"GET", "POST"} & set(rule.methods or ())):
            variants = [{name: real.get(name, "1") for name in rule.arguments}]
            for name in rule.arguments:
                is_int = "int" in type(rule._converters[name]).__name__.lower()
                for value in HOSTILE_IDS if is_int else HOSTILE_STRINGS:
                    variants.append({**variants[0], name: value})
            for values in variants:
                path = rule.rule
                for name, value in values.items():
                    path = re.sub(rf"<(?:[^:<>]+:)?{name}>", value, path)
                if rule.endpoint in LAST and values == variants[0] and method == "POST":
                    continue  # a destructive action on the real objects would end the run early
                yield rule.endpoint, method, path


@pytest.fixture
def world(app: Flask, make_user, make_account, dovecot: Dovecot) -> dict[str, str]:
    dovecot.deliver("alice", generated.make(1, "attachment"))
    dovecot.deliver("alice", generated.make(2, "html"))
    account = make_account()
    fetching.fetch(account)
    make_user("boss", role="admin")
    reader = make_user("reader")
    users.grant(reader, account, read=True, send=True)
    hook, _secret = webhooks.add_webhook(account, "http://127.0.0.1:9/hook")
    message = messages.listing(account, limit=1)[0]
    attachment = message.attachments[0] if message.attachments else None
    return {
        "account_id": str(account.id),
        "message_id": str(message.id),
        "attachment_id": str(attachment.id if attachment else 1),
        "user_id": str(reader.id),
        "webhook_id": str(hook.id),
        "job_id": "0123456789abcdef",
    }


@pytest.mark.parametrize("role", ["admin", "user", "anonymous"])
def test_no_route_answers_5xx_to_hostile_values(app: Flask, client: FlaskClient, world: dict[str, str], role) -> None:
    if role != "anonymous":
        page = client.get("/login").get_data(as_text=True)
        name = "boss" if role == "admin" else "reader"
        client.post("/login", data={"csrf_token": csrf_token(page), "username": name, "password": TEST_PASSWORD})
    token = csrf_token(client.get("/login" if role == "anonymous" else "/").get_data(as_text=True))
    query_names, fields = _query_names(), _form_fields()
    failures: list[str] = []
    for endpoint, method, path in _urls(app, world):
        for value in HOSTILE:
            response: Any
            if method == "GET":
                response = client.get(path, query_string=dict.fromkeys(query_names, value))
            else:
                data = {**dict.fromkeys(fields, value), "csrf_token": token}
                response = client.post(path, data=data, query_string=dict.fromkeys(query_names, value))
            if response.status_code >= 500:
                failures.append(f"{response.status_code} {method} {path} ({endpoint}) with {value[:40]!r}")
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(sorted(set(failures))[:60])
