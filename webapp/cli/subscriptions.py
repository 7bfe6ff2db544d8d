"""``email-connector subscriptions list|start|stop`` and ``email-connector subscriber`` (IMAP IDLE)."""

from __future__ import annotations

import signal
import threading

import click
from flask.cli import AppGroup, ScriptInfo, pass_script_info, with_appcontext

from webapp.cli.common import fail, print_json
from webapp.services.account import accounts
from webapp.services.errors import ConnectorError
from webapp.services.receiving import subscriber as subscriber_service
from webapp.services.receiving import subscriptions

group = AppGroup("subscriptions", help="Subscriptions to incoming mail: new mail handed over as it arrives (IDLE).")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
@with_appcontext
def list_(as_json: bool) -> None:
    """Every subscription with its state, since when, the last new mail and the last error."""
    rows = subscriptions.listing()
    if as_json:
        print_json([row.as_dict() for row in rows])
        return
    if not rows:
        click.echo("no subscriptions (email-connector subscriptions start NAME)", err=True)
    for row in rows:
        last = row.last_event_at.isoformat() if row.last_event_at else "-"
        click.echo(f"{row.account}\t{row.state}\tsince {row.since.isoformat()}\tlast mail {last}\t{row.comment or ''}")


@group.command("start")
@click.argument("name")
@click.option("--on-new-email", default=None, metavar="TARGET", help="A dotted path or a webhook URL of the account.")
@click.option("--on-state-changed", default=None, metavar="TARGET", help="A dotted path or a webhook URL.")
@with_appcontext
def start(name: str, on_new_email: str | None, on_state_changed: str | None) -> None:
    """Subscribe the account NAME (or start it again after it gave up); the subscriber takes it in seconds."""
    try:
        subscription = subscriptions.subscribe(accounts.get(name), on_new_email, on_state_changed)
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"subscribed: {name} ({subscription.state}; `email-connector subscriber` listens)")


@group.command("stop")
@click.argument("name")
@with_appcontext
def stop(name: str) -> None:
    """Unsubscribe the account NAME (its subscriber lets it go within seconds)."""
    try:
        stopped = subscriptions.unsubscribe(accounts.get(name))
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"unsubscribed: {name}" if stopped else f"{name} was not subscribed")


@click.command("subscriber")
@pass_script_info
def subscriber(info: ScriptInfo) -> None:
    """Listen to every subscribed account (IDLE) until stopped; any number may run: each account is held
    by exactly one of them."""
    app = info.load_app()
    stopping = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo("subscriber: listening to the subscribed accounts", err=True)
    subscriber_service.run_forever(app, stopping)
    click.echo("subscriber: stopped", err=True)


def register(cli: click.Group) -> None:
    """Add ``subscriptions`` and ``subscriber`` to ``cli``."""
    cli.add_command(group)
    cli.add_command(subscriber)
