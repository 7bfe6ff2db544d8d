"""``email-connector webhooks …``: add, list, remove, test, deliveries, redeliver."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from webapp.cli.common import fail, print_json, read_secret_line
from webapp.models import Delivery, Webhook
from webapp.models.delivery import DELIVERED, EVENTS
from webapp.services.account import accounts
from webapp.services.errors import ConnectorError
from webapp.services.events import dispatch, webhooks

group = AppGroup("webhooks", help="Webhooks: signed JSON POSTs of an account's fetch events.")


def describe(hook: Webhook) -> dict[str, object]:
    """A webhook as ``webhooks list`` and ``add`` print it (never its secret)."""
    account = accounts.by_id(hook.account_id)
    return {
        "id": hook.id,
        "account": account.name if account else None,
        "url": hook.url,
        "events": hook.events,
        "active": hook.active,
        "created_at": hook.created_at.isoformat(),
    }


def describe_delivery(delivery: Delivery) -> dict[str, object]:
    """A delivery as ``webhooks deliveries`` and ``redeliver`` print it: status, attempts, time, error."""
    return {
        "id": delivery.id,
        "webhook": delivery.webhook_id,
        "event": delivery.event,
        "delivery_id": delivery.event_id,
        "redelivery_of": delivery.redelivery_of,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "duration_ms": delivery.duration_ms,
        "error": delivery.last_error,
        "created_at": delivery.created_at.isoformat(),
        "delivered_at": delivery.delivered_at.isoformat() if delivery.delivered_at else None,
    }


def _events(value: str) -> list[str]:
    events = [e.strip() for e in value.split(",") if e.strip()]
    unknown = [e for e in events if e not in EVENTS]
    if unknown or not events:
        fail(f"--events: a comma-separated list of {', '.join(EVENTS)} (got {value!r})")
    return events


@group.command("add")
@click.argument("account_name", metavar="ACCOUNT")
@click.argument("url")
@click.option("--events", default=",".join(EVENTS), show_default=True, help="Events to POST, comma-separated.")
@click.option("--secret-stdin", is_flag=True, help="Read the signing secret from stdin instead of making one.")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
def add(account_name: str, url: str, events: str, secret_stdin: bool, as_json: bool) -> None:
    """Add a webhook to ACCOUNT; print its signing secret once (unless it was given on stdin)."""
    wanted = _events(events)
    given = read_secret_line() if secret_stdin else None
    try:
        hook, secret = webhooks.add_webhook(accounts.get(account_name), url, wanted, secret=given)
    except ConnectorError as exc:
        fail(str(exc))
    if as_json:
        print_json({**describe(hook), **({} if secret_stdin else {"secret": secret})})
        return
    click.echo(f"webhook {hook.id} added to {account_name}: {', '.join(hook.events)}")
    if not secret_stdin:
        click.echo("its signing secret, shown only now (store it with the receiver):", err=True)
        click.echo(secret)


@group.command("list")
@click.argument("account_name", metavar="[ACCOUNT]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
def list_webhooks(account_name: str | None, as_json: bool) -> None:
    """List the webhooks of ACCOUNT, or of every account (never their secrets)."""
    try:
        hooks = webhooks.webhooks(accounts.get(account_name)) if account_name else webhooks.all_webhooks()
    except ConnectorError as exc:
        fail(str(exc))
    rows = [describe(hook) for hook in hooks]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        events = ",".join(row["events"])  # type: ignore[arg-type]
        click.echo(f"{row['id']}\t{row['account']}\t{row['url']}\t{events}")


@group.command("remove")
@click.argument("webhook_id", metavar="ID", type=int)
def remove(webhook_id: int) -> None:
    """Remove a webhook and its delivery log."""
    try:
        webhooks.remove_webhook(None, webhook_id)
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"webhook {webhook_id} removed")


def _report(what: str, delivery: Delivery, as_json: bool) -> None:
    if as_json:
        print_json(describe_delivery(delivery))
    elif delivery.status == DELIVERED:
        click.echo(f"{what} delivered in {delivery.duration_ms} ms (delivery {delivery.id})")
    if delivery.status != DELIVERED:
        fail(f"{what} failed (delivery {delivery.id}): {delivery.last_error}")


@group.command("test")
@click.argument("webhook_id", metavar="ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
def test(webhook_id: int, as_json: bool) -> None:
    """POST a ``test`` event to the webhook now; exit 0 only when it was accepted."""
    try:
        delivery = dispatch.send_test(webhooks.get_webhook(webhook_id))
    except ConnectorError as exc:
        fail(str(exc))
    _report("test event", delivery, as_json)


@group.command("deliveries")
@click.argument("webhook_id", metavar="ID", type=int)
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
def deliveries(webhook_id: int, limit: int, as_json: bool) -> None:
    """Show the webhook's delivery log, newest first."""
    try:
        rows = [describe_delivery(d) for d in webhooks.webhook_deliveries(webhooks.get_webhook(webhook_id), limit)]
    except ConnectorError as exc:
        fail(str(exc))
    if as_json:
        print_json(rows)
        return
    for row in rows:
        duration = f"{row['duration_ms']} ms" if row["duration_ms"] is not None else "-"
        fields = [row["id"], row["created_at"], row["event"], row["status"], duration, row["error"] or ""]
        click.echo("\t".join(str(field) for field in fields))


@group.command("redeliver")
@click.argument("delivery_id", metavar="DELIVERY_ID", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
def redeliver(delivery_id: int, as_json: bool) -> None:
    """POST a delivered or failed delivery again now (recorded as a new delivery)."""
    try:
        again = dispatch.redeliver(webhooks.get_delivery(delivery_id))
    except ConnectorError as exc:
        fail(str(exc))
    _report(f"redelivery of {delivery_id}", again, as_json)


def register(cli: click.Group) -> None:
    """Add the ``webhooks`` commands to ``cli``."""
    cli.add_command(group)
