"""``email-connector send-queued`` and ``outbox list|retry|cancel``."""

from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from webapp.cli.common import fail, print_json
from webapp.models import EmailMessage
from webapp.services.account import accounts
from webapp.services.errors import ConnectorError
from webapp.services.outgoing import outbox

group = AppGroup("outbox", help="Outgoing mail: drafts, queued, sending, sent and failed messages.")


def describe(message: EmailMessage) -> dict[str, object]:
    """An outgoing message as ``outbox list --json`` prints it."""

    def when(value: object) -> str | None:
        return value.isoformat() if value is not None else None  # type: ignore[attr-defined]

    return {
        "id": message.id,
        "status": message.status,
        "message_id": message.message_id,
        "subject": message.subject,
        "to": [m["address"] for m in message.mailboxes("to")],
        "attempts": message.attempts,
        "next_attempt_at": when(message.next_attempt_at),
        "send_after": when(message.send_after),
        "sent_at": when(message.sent_at),
        "last_error": message.last_error,
        "possibly_sent": message.possibly_sent,
        "accepted": message.accepted or [],
    }


@click.command("send-queued")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most N messages per account.")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
@with_appcontext
def send_queued(limit: int | None, as_json: bool) -> None:
    """One pass: send the due queued mail of every account (for a system cron, or by hand)."""
    try:
        done = outbox.send_queued(limit=limit)
    except ConnectorError as exc:
        fail(str(exc))
    result = done.result
    assert result is not None
    summary = {
        "accounts": done.accounts,
        "sent": result.sent,
        "retrying": result.retrying,
        "failed": result.failed,
        "requeued": done.requeued,
        "possibly_sent": done.possibly_sent,
    }
    if as_json:
        print_json(summary)
        return
    for error in dict.fromkeys(result.errors):
        click.echo(f"error: {error}", err=True)
    if done.possibly_sent:
        click.echo(
            f"warning: {done.possibly_sent} message(s) possibly sent by a worker that stopped: see Failed", err=True
        )
    click.echo(f"sent {result.sent}, retrying later {result.retrying}, failed {result.failed}")


@group.command("list")
@click.option("--account", "account_name", required=True, metavar="NAME")
@click.option(
    "--status", type=click.Choice(outbox.LIST_STATUSES, case_sensitive=False), default="queued", show_default=True
)
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
@with_appcontext
def list_(account_name: str, status: str, limit: int, as_json: bool) -> None:
    """The account's outgoing messages in one state, newest first."""
    try:
        rows = outbox.listing(accounts.get(account_name), status, limit=limit)
    except ConnectorError as exc:
        fail(str(exc))
    if as_json:
        print_json([describe(m) for m in rows])
        return
    for m in rows:
        extra = m.last_error or (f"next attempt {m.next_attempt_at.isoformat()}" if m.next_attempt_at else "")
        flag = " [possibly sent]" if m.possibly_sent else ""
        click.echo(f"{m.id}\t{m.status}\t{m.attempts}\t{m.subject}\t{extra}{flag}")


@group.command("retry")
@click.argument("message_id", type=int, required=False)
@click.option("--all-failed", is_flag=True, help="Every failed message (of --account, or of every account).")
@click.option("--account", "account_name", default=None, metavar="NAME")
@with_appcontext
def retry(message_id: int | None, all_failed: bool, account_name: str | None) -> None:
    """Queue a failed message again (ID), or every failed one (--all-failed)."""
    if (message_id is None) == (not all_failed):
        fail("give a message ID or --all-failed")
    try:
        account = accounts.get(account_name) if account_name else None
        count = outbox.retry(account, [message_id] if message_id is not None else [], all_failed=all_failed)
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"queued again: {count} message(s)")


@group.command("cancel")
@click.argument("message_id", type=int)
@with_appcontext
def cancel(message_id: int) -> None:
    """Take a queued (or failed) message out of the queue; it is kept as a draft."""
    try:
        message = outbox.cancel(None, message_id)
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"cancelled: message {message.id} is a draft now")


def register(cli: click.Group) -> None:
    """Add ``send-queued`` and the ``outbox`` commands to ``cli``."""
    cli.add_command(send_queued)
    cli.add_command(group)
