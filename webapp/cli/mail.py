"""``email-connector send``, ``fetch`` and ``messages list``."""

from __future__ import annotations

import shlex
from datetime import datetime
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from webapp.cli.common import fail, print_json
from webapp.models import EmailAccount
from webapp.models.fetchrun import RunTrigger
from webapp.models.message import SENT_FOLDER
from webapp.services.account import accounts
from webapp.services.errors import ConnectorError
from webapp.services.outgoing import bulk, outbox, sending
from webapp.services.reading import messages
from webapp.services.receiving import fetching, fetchjobs, fetchruns, serverfolders

messages_group = AppGroup("messages", help="Stored messages.")


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{what} {str(path)!r} cannot be read: {exc}")


@click.command("send")
@click.option("--account", "account_name", required=True, metavar="NAME", help="Send from this account.")
@click.option("--to", default=None, help="Recipients, separated by ';'.")
@click.option("--cc", default="", help="Copy recipients, separated by ';'.")
@click.option("--bcc", default="", help="Blind copy recipients, separated by ';' (never in the headers).")
@click.option("--subject", default=None)
@click.option("--body", default=None, metavar="TEXT", help="The plain-text body.")
@click.option("--body-file", type=click.Path(dir_okay=False, path_type=Path), help="Read the text body from F.")
@click.option("--html-file", type=click.Path(dir_okay=False, path_type=Path), help="Read an HTML body from F.")
@click.option("--attach", multiple=True, type=click.Path(dir_okay=False, path_type=Path), help="Attach FILE (repeat).")
@click.option("--queue", "queue_it", is_flag=True, help="Queue it for a worker instead of sending now.")
@click.option("--send-after", default=None, metavar="ISO-TIME", help="With --queue: not before this time.")
@click.option(
    "--from-jsonl",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --queue: one message per line (to, cc, bcc, reply_to, subject, body, html, attachments, key).",
)
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
@with_appcontext
def send(
    account_name: str,
    to: str | None,
    cc: str,
    bcc: str,
    subject: str | None,
    body: str | None,
    body_file: Path | None,
    html_file: Path | None,
    attach: tuple[Path, ...],
    queue_it: bool,
    send_after: str | None,
    from_jsonl: Path | None,
    as_json: bool,
) -> None:
    """Send a message now (exit 0 only when the server accepted it), or queue it (--queue)."""
    if (send_after or from_jsonl) and not queue_it:
        fail("--send-after and --from-jsonl go with --queue")
    if from_jsonl is not None:
        if to or subject or body or body_file or html_file or attach or send_after:
            fail("--from-jsonl takes every message from the file: no --to, --subject, body or --attach with it")
        _queue_file(account_name, from_jsonl, as_json)
        return
    if to is None or subject is None:
        fail("--to and --subject are required")
    if body is not None and body_file is not None:
        fail("give --body or --body-file, not both")
    if body is None and body_file is None:
        fail("a body is required: --body TEXT or --body-file F")
    text = body if body is not None else _read_text(body_file, "body file")  # type: ignore[arg-type]
    html = _read_text(html_file, "HTML file") if html_file else ""
    attachments = []
    for path in attach:
        try:
            attachments.append(sending.OutgoingAttachment(path.name, path.read_bytes()))
        except OSError as exc:
            fail(f"attachment {str(path)!r} cannot be read: {exc.strerror}")
    draft = sending.Draft(to=to, cc=cc, bcc=bcc, subject=subject, text=text, html=html, attachments=tuple(attachments))
    if queue_it:
        _queue_one(account_name, draft, send_after, as_json)
        return
    try:
        sent = sending.send(accounts.get(account_name), draft)
    except ConnectorError as exc:
        fail(str(exc))
    if sent is None:
        click.echo("sent, but it could not be kept in Sent (see the log)", err=True)
        if as_json:
            print_json({"id": None, "message_id": None, "status": "SENT"})
        return
    if as_json:
        print_json({"id": sent.id, "message_id": sent.message_id, "status": sent.status})
    else:
        click.echo(f"sent: message {sent.id} <{sent.message_id}>")


def _queue_one(account_name: str, draft: sending.Draft, send_after: str | None, as_json: bool) -> None:
    when = None
    if send_after is not None:
        try:
            when = datetime.fromisoformat(send_after)
        except ValueError:
            fail(f"--send-after: {send_after!r} is not an ISO time (e.g. 2026-12-24T09:00:00+01:00)")
        if when.tzinfo is None:
            fail("--send-after: give the time zone too (e.g. 2026-12-24T09:00:00+01:00, or Z for UTC)")
    try:
        queued = outbox.enqueue(accounts.get(account_name), draft, send_after=when)
    except ConnectorError as exc:
        fail(str(exc))
    if as_json:
        print_json({"id": queued.id, "message_id": queued.message_id, "status": queued.status})
    else:
        after = f", not before {queued.send_after.isoformat()}" if queued.send_after else ""
        click.echo(f"queued: message {queued.id} <{queued.message_id}>{after}")


def _queue_file(account_name: str, path: Path, as_json: bool) -> None:
    try:
        items = bulk.read_jsonl(path)
        queued, skipped = outbox.enqueue_many(accounts.get(account_name), items)
    except ConnectorError as exc:
        fail(f"{path}: {exc}; nothing was queued")
    if as_json:
        print_json({"queued": queued, "skipped": skipped})
    else:
        click.echo(f"queued: {queued} message(s); skipped (queued before): {skipped}")


class _FetchGroup(AppGroup):
    """``fetch NAME …`` fetches (the hidden ``now`` subcommand); ``fetch runs NAME`` shows the history."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["now", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        formatter.write_usage(ctx.command_path, "NAME [--wait | --inline] [--json]  |  runs NAME [--limit N] [--json]")


@click.group("fetch", cls=_FetchGroup)
def fetch_group() -> None:
    """Fetch an account's mail as its settings say (queued for a worker unless --inline): `fetch NAME`.

    `fetch runs NAME` lists its last fetches. (An account named "runs" is fetched with `fetch now runs`.)
    """


@fetch_group.command("now", hidden=True)
@click.argument("name")
@click.option("--wait", is_flag=True, help="Wait for the worker to finish and print the summary.")
@click.option("--inline", is_flag=True, help="Run the fetch in this process instead of a worker.")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
@with_appcontext
def fetch(name: str, wait: bool, inline: bool, as_json: bool) -> None:
    """Fetch the account's mail as its settings say (queued for a worker unless --inline)."""
    if wait and inline:
        fail("give --wait or --inline, not both")
    try:
        account = accounts.get(name)
        if inline:
            summary = fetchruns.run(account, trigger=RunTrigger.COMMAND, progress=_print_progress).as_dict()
            _print_summary(summary, as_json, account)
            return
        worker_listens = fetchjobs.live_worker()
        if wait and not worker_listens:
            fail("no worker is listening on the fetch queue (start one: `make run`, or `email-connector worker`)")
        job_id = fetchjobs.enqueue(account, trigger=RunTrigger.COMMAND)
        if not wait:
            _print_queued(account.name, fetchjobs.status(job_id), worker_listens, as_json)
            return
    except ConnectorError as exc:
        fail(str(exc))
    result = fetchjobs.wait(
        job_id,
        current_app.config["FETCH_WAIT_SECONDS"],
        lambda status: click.echo(f"fetched {status.done}/{status.total}", err=True) if status.total else None,
    )
    if result.state == "finished" and result.cancelled:
        stored = result.summary.get("stored", 0)
        fail(f"the fetch was cancelled; {stored} message{'' if stored == 1 else 's'} stored before it stopped")
    if result.state == "finished":
        _print_summary(result.summary, as_json, account)
    elif not result.finished:
        fail(f"the fetch job {job_id} is still {result.state} after waiting; it goes on in the worker")
    else:
        fail(result.error or f"the fetch job ended as {result.state}")


def _print_queued(name: str, status: fetchjobs.FetchStatus, worker_listens: bool, as_json: bool) -> None:
    if as_json:
        print_json({"job_id": status.job_id, "account": name, "state": status.state, "worker": worker_listens})
        return
    what = "a fetch of {} is already running" if status.state == "started" else "queued a fetch of {}"
    line = f"{what.format(name)} (job {status.job_id})"
    if worker_listens:
        click.echo(
            f"{line}; follow it with: email-connector fetch {shlex.quote(name)} --wait, "
            "or on the account's mailbox page"
        )
    else:
        click.echo(f"{line}; no worker is running: it runs once one starts (`make run`, or `email-connector worker`)")


def _print_progress(progress: fetching.FetchProgress) -> None:
    click.echo(f"fetched {progress.done}/{progress.total} ({progress.rate:.0f} msg/s)", err=True)


def _print_summary(summary: dict[str, int], as_json: bool, account: EmailAccount) -> None:
    keys = ("stored", "skipped", "quarantined", "failed", "total_on_server")
    if as_json:
        print_json({key: summary.get(key, 0) for key in keys})
        return
    click.echo(", ".join(f"{key.replace('_', ' ')} {summary.get(key, 0)}" for key in keys))
    on_server, looked_at = summary.get("total_on_server", 0), summary.get("total", 0)
    if account.fetch_strategy == "latest" and on_server > looked_at:
        click.echo(
            f"fetched the {account.fetch_order} {looked_at} of {on_server} on the server — change this with "
            f"`email-connector accounts update {shlex.quote(account.name)} --count N` or `--strategy replicate`",
            err=True,
        )


@click.command("folders")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
@with_appcontext
def folders(name: str, as_json: bool) -> None:
    """List the folders on the account's server, with their message counts."""
    try:
        found = serverfolders.server_folders(accounts.get(name))
    except ConnectorError as exc:
        fail(str(exc))
    if as_json:
        print_json([{"name": f.name, "delimiter": f.delimiter, "flags": list(f.flags), "messages": f.messages}
                    for f in found])  # fmt: skip
        return
    for f in found:
        click.echo(f"{f.name}\t{'-' if f.messages is None else f.messages}\t{' '.join(f.flags)}")


@messages_group.command("list")
@click.option("--account", "account_name", required=True, metavar="NAME")
@click.option("--folder", default=None, help="Only this folder (the server's name, or Sent).")
@click.option("--limit", type=click.IntRange(min=0), default=messages.DEFAULT_LIMIT, show_default=True, help="0: all.")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
def list_messages(account_name: str, folder: str | None, limit: int, as_json: bool) -> None:
    """List stored messages, newest first."""
    try:
        account = accounts.get(account_name)
        # Folders with mail stored, the ones the account fetches, and Sent: all of them may be asked for.
        known = list(dict.fromkeys([*messages.folders(account), *account.fetch_folders, SENT_FOLDER]))
        if folder is not None and folder not in known:
            fail(f"no folder {folder!r} in {account.name} (its folders: {', '.join(known)})")
        rows = [messages.describe(m) for m in messages.listing(account, folder, limit)]
    except ConnectorError as exc:
        fail(str(exc))
    if as_json:
        print_json(rows)
        return
    for row in rows:
        sender = row["from"][0]["address"] if row["from"] else ""
        click.echo(f"{row['id']}\t{row['folder']}\t{row['date'] or ''}\t{sender}\t{row['subject']}")


@fetch_group.command("runs")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True, help="How many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
@with_appcontext
def runs(name: str, limit: int, as_json: bool) -> None:
    """The account's last fetches: when, started by what, how they ended, what they stored."""
    try:
        found = fetchruns.last_runs(accounts.get(name), limit)
    except ConnectorError as exc:
        fail(str(exc))
    rows = [fetchruns.describe(run) for run in found]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        counts = ", ".join(f"{key} {row[key]}" for key in ("stored", "skipped", "quarantined", "failed"))
        tail = f": {row['error']}" if row["error"] else ""
        click.echo(f"{row['started_at']}\t{row['trigger']}\t{row['status']}\t{counts}{tail}")


def register(cli: click.Group) -> None:
    """Add ``send``, ``fetch``, ``folders`` and ``messages`` to ``cli``."""
    for command in (send, fetch_group, folders, messages_group):
        cli.add_command(command)
