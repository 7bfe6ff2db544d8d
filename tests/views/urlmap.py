"""Every GET route of the app with real ids, for tests that must hold on all pages (not just one)."""

from __future__ import annotations

from typing import Any

from flask import Flask, url_for

from tests.servers.dovecot import Dovecot
from tests.views.test_mail_views import _rich_message
from webapp.services import callbacks, fetching, fetchjobs, messages

# Pages that need no login.
PUBLIC = {"auth.login", "auth.first_run", "main.healthz"}
# Asked for as HTMX does: the full page of a running fetch fails today ('args' is undefined in
# mailbox.html; left to the mailbox's owners), and only HTMX polls that URL.
HEADERS = {"mailbox.fetch_progress": {"HX-Request": "true"}}


def every_get_url(app: Flask, values: dict[str, Any]) -> dict[str, str]:
    """Endpoint → URL for every GET route but static files, arguments filled from ``values``.

    A route with an argument that ``values`` lacks fails the test: a new route must be covered too.
    """
    urls: dict[str, str] = {}
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
                continue
            missing = rule.arguments - values.keys()
            assert not missing, f"{rule.rule}: no value for {sorted(missing)}"
            urls[rule.endpoint] = url_for(rule.endpoint, **{name: values[name] for name in rule.arguments})
    return urls


def real_objects(account: Any, user: Any, dovecot: Dovecot) -> dict[str, Any]:
    """Ids of real objects for every route argument: a fetched message with an inline image, a fetch job."""
    dovecot.deliver("alice", _rich_message())
    fetching.fetch(account)
    (message,) = messages.listing(account)
    image = next(a for a in message.attachments if a.content_id)
    return {
        "account_id": account.id,
        "user_id": user.id,
        "message_id": message.id,
        "attachment_id": image.id,
        "job_id": fetchjobs.enqueue(account),
        "webhook_id": callbacks.add_webhook(account, "http://127.0.0.1:9/hook")[0].id,
        "topic": "webhooks",
    }
