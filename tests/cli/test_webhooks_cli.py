"""``email-connector webhooks``: add (the secret printed once, or read from stdin), list, remove, test, redeliver."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from click.testing import Result

from tests.servers.webhookreceiver import Receiver
from webapp.adapters import webhook
from webapp.models.delivery import EVENTS
from webapp.services.events import dispatch, webhooks


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def test_add_list_remove(run: Callable[..., Result], make_account, receiver: Receiver) -> None:
    make_account(name="Work")
    make_account(name="Other")
    added = run("webhooks", "add", "Work", receiver.url("/in"), "--events", "fetch,error")
    assert added.exit_code == 0, added.output
    summary, secret = added.stdout.splitlines()
    assert summary.startswith("webhook ") and summary.endswith("added to Work: fetch, error")
    assert "shown only now" in added.stderr and secret not in added.stderr
    hook_id = int(summary.split()[1])

    given = run("webhooks", "add", "other", receiver.url("/o"), "--secret-stdin", "--json",
                stdin="a-secret-of-my-own-1234\n")  # fmt: skip
    assert given.exit_code == 0, given.output
    described = json.loads(given.stdout)  # only JSON on stdout
    assert "secret" not in described and "a-secret-of-my-own" not in given.output
    assert described["account"] == "Other" and described["events"] == list(EVENTS)
    dispatch.send_test(webhooks.get_webhook(described["id"]))
    request = receiver.requests[0]
    assert webhook.verify("a-secret-of-my-own-1234", request.body, request.headers["x-emailconnector-signature"])

    listed = json.loads(run("webhooks", "list", "--json").stdout)
    assert [(r["id"], r["account"], r["url"], r["events"]) for r in listed] == [
        (hook_id, "Work", receiver.url("/in"), ["fetch", "error"]),
        (described["id"], "Other", receiver.url("/o"), list(EVENTS)),
    ]
    assert [r["id"] for r in json.loads(run("webhooks", "list", "Other", "--json").stdout)] == [described["id"]]
    assert run("webhooks", "list").stdout.splitlines()[0] == f"{hook_id}\tWork\t{receiver.url('/in')}\tfetch,error"
    assert "secret" not in run("webhooks", "list", "--json").stdout

    assert run("webhooks", "remove", str(hook_id)).stdout == f"webhook {hook_id} removed\n"
    again = run("webhooks", "remove", str(hook_id))
    assert again.exit_code == 1 and again.stderr == f"error: no webhook {hook_id}\n"
    assert [h.id for h in webhooks.all_webhooks()] == [described["id"]]


@pytest.mark.parametrize(
    ("args", "stdin", "reason"),
    [
        (["Nobody", "http://127.0.0.1:9/"], None, "no account"),
        (["Work", "ftp://127.0.0.1/x?token=SECRET"], None, "only http:// and https://"),
        (["Work", "http://169.254.169.254/latest/?token=SECRET"], None, "never allowed"),
        (["Work", "http://127.0.0.1:9/", "--events", "fetch,nope"], None, "--events"),
        (["Work", "http://127.0.0.1:9/", "--secret-stdin"], "short\n", "at least 16"),
        (["Work", "http://127.0.0.1:9/", "--secret-stdin"], "", "expected the secret on standard input"),
    ],
)
def test_add_refusals_are_one_line(run: Callable[..., Result], make_account, args, stdin, reason) -> None:
    make_account(name="Work")
    result = run("webhooks", "add", *args, stdin=stdin)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: ") and reason in result.stderr and result.stderr.count("\n") == 1
    assert "SECRET" not in result.stderr
    assert webhooks.all_webhooks() == []


def test_test_deliveries_and_redeliver(run: Callable[..., Result], make_account, receiver: Receiver) -> None:
    account = make_account(name="Work")
    hook, _ = webhooks.add_webhook(account, receiver.url("/in/SECRET"), ["error"])

    tested = run("webhooks", "test", str(hook.id))
    assert tested.exit_code == 0 and tested.stdout.startswith("test event delivered in ")

    receiver.answer(503)
    failed = run("webhooks", "test", str(hook.id), "--json")
    assert failed.exit_code == 1
    record = json.loads(failed.stdout)
    assert record["status"] == "failed" and record["event"] == "test" and record["duration_ms"] is not None
    assert failed.stderr == (
        f"error: test event failed (delivery {record['id']}): http://127.0.0.1:{receiver.port} answered 503 "
        "Service Unavailable\n"
    )

    receiver.answer(200)
    again = run("webhooks", "redeliver", str(record["id"]), "--json")
    assert again.exit_code == 0, again.output
    redelivered = json.loads(again.stdout)
    assert redelivered["redelivery_of"] == record["id"] and redelivered["delivery_id"] == record["delivery_id"]
    assert receiver.requests[-1].headers["x-emailconnector-delivery"] == record["delivery_id"]

    log = json.loads(run("webhooks", "deliveries", str(hook.id), "--json").stdout)
    assert [d["status"] for d in log] == ["delivered", "failed", "delivered"]
    assert all("SECRET" not in (d["error"] or "") for d in log)
    assert len(run("webhooks", "deliveries", str(hook.id), "--limit", "1").stdout.splitlines()) == 1

    for args in (["test", "999999"], ["redeliver", "999999"], ["deliveries", "999999"],
                 ["redeliver", "99999999999999999999999"]):  # fmt: skip
        missing = run("webhooks", *args)
        assert missing.exit_code == 1 and missing.stderr.startswith("error: no ") and missing.stderr.count("\n") == 1
