"""``email-connector accounts …``: add, list, test, remove."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click
from flask.cli import AppGroup

from webapp.adapters.mail.endpoint import EndpointError, format_url, parse_url
from webapp.cli.common import fail, print_json, read_ca_file, read_secret_line
from webapp.models import EmailAccount
from webapp.models.account import (
    DEFAULT_FETCH_COUNT,
    DEFAULT_TIMEOUT,
    MAX_BATCH_SIZE,
    MAX_FETCH_COUNT,
    MAX_FETCH_EVERY_MINUTES,
    MAX_MESSAGE_SIZE,
    MAX_SEND_ATTEMPTS,
    MAX_SEND_CONNECTIONS,
    MAX_SEND_PER_MINUTE,
    MAX_TIMEOUT,
)
from webapp.services.account import accounts, connection, oauth
from webapp.services.account.accounts import AccountSettings
from webapp.services.errors import ConnectorError
from webapp.services.receiving import subscriptions

group = AppGroup("accounts", help="Manage mail accounts.")


def describe(account: EmailAccount) -> dict[str, object]:
    """An account as ``accounts list`` prints it: its settings, servers as URLs (null: not used), never its
    password."""
    primary, provider = accounts.primary_of(account), oauth.provider_of(account)
    incoming, outgoing = _urls(account)
    return {
        "name": account.name,
        "address": account.address,
        "display_name": account.display_name,
        "username": account.username,
        "incoming": incoming,
        "outgoing": outgoing,
        "shared": account.is_shared,
        "primary": primary.name if primary is not None else None,
        "login_format": account.login_format if account.is_shared else None,
        "sign_in": "oauth" if account.auth_method == "oauth" else "password",
        "oauth_provider": provider.name if provider is not None else None,
        "smtp_auth": account.smtp_auth,
        "tls_verify": account.tls_verify,
        "timeout": account.timeout,
        "count": account.fetch_count,
        "sanitize_html": account.sanitize_html,
        "strategy": account.fetch_strategy,
        "order": account.fetch_order,
        "batch_size": account.batch_size,
        "folders": account.fetch_folders,
        "max_size": account.max_message_size,
        "every": account.fetch_every_minutes,
        "after_fetch": account.after_fetch_label,
        "max_send_attempts": account.max_send_attempts,
        "send_connections": account.send_connections,
        "send_per_minute": account.send_per_minute,
        "append_to_sent": account.append_to_sent,
    }


def _urls(account: EmailAccount) -> tuple[str | None, str | None]:
    """The account's servers as ``--incoming``/``--outgoing`` take them; None for a server it does not use."""
    incoming = format_url(
        account.incoming_protocol,
        account.incoming_security,
        account.incoming_host,
        account.incoming_port,
        account.main_folder if account.incoming_protocol == "imap" else "",
    )
    outgoing = format_url("smtp", account.outgoing_security, account.outgoing_host, account.outgoing_port)
    return (incoming if account.receives else None), (outgoing if account.sends else None)


def _certificates_of(account: EmailAccount) -> dict[str, Any]:
    """A shared mailbox on its primary's servers checks their certificates as the primary does."""
    return {"tls_verify": account.tls_verify, "ca_cert_pem": account.ca_cert_pem}


@group.command("add")
@click.argument("name")
@click.option("--address", required=True, help="The account's email address.")
@click.option("--username", help="Login name at the servers (default: the address; shared: the shared mailbox's).")
@click.option("--display-name", default="", help="Name shown as the sender.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (not for --shared).")
@click.option(
    "--incoming",
    metavar="URL",
    help="imap[s]://host[:port]/FOLDER, pop3[s]://…, imap+starttls://…; leave out for a send-only account",
)
@click.option(
    "--outgoing",
    metavar="URL",
    help="smtp://, smtp+starttls:// or smtps://host[:port]; leave out for a receive-only account",
)
@click.option("--oauth", "oauth_name", metavar="PROVIDER", help="Sign in with tokens of this OAuth provider.")
@click.option("--shared", is_flag=True, help="A shared mailbox, reached with --primary's login.")
@click.option("--primary", metavar="ACCOUNT", help="Shared: the account whose login reaches the mailbox.")
@click.option(
    "--login-format",
    type=click.Choice(["plain", "exchange", "dovecot"]),
    help="Shared: exchange (primary@domain\\shared), dovecot (shared*primary) or plain (the primary's login).",
)
@click.option("--smtp-auth", type=click.Choice(["login", "none"]), default="login", show_default=True)
@click.option(
    "--ca-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CA certificate (PEM) to trust.",
)
@click.option(
    "--tls-verify", type=click.Choice(["on", "off"]), help="Check certificates [default: on; shared: as the primary]"
)
@click.option(
    "--timeout", type=click.IntRange(1, MAX_TIMEOUT), default=DEFAULT_TIMEOUT, show_default=True, help="Seconds."
)
@click.option(
    "--count",
    type=click.IntRange(1, MAX_FETCH_COUNT),
    default=DEFAULT_FETCH_COUNT,
    show_default=True,
    help="Emails to retrieve.",
)
def add(
    name: str,
    address: str,
    username: str | None,
    display_name: str,
    password_stdin: bool,
    incoming: str | None,
    outgoing: str | None,
    oauth_name: str | None,
    shared: bool,
    primary: str | None,
    login_format: str | None,
    smtp_auth: str,
    ca_file: Path | None,
    tls_verify: str | None,
    timeout: int,
    count: int,
) -> None:
    """Add an account with manual server settings: both servers, or only --incoming (receive-only) or only
    --outgoing (send-only). A --shared mailbox logs in with its --primary account's password and, without
    --incoming/--outgoing, uses the primary's servers."""
    if (primary or login_format) and not shared:
        fail("--primary and --login-format are for a --shared mailbox")
    if shared and (not primary or password_stdin):
        fail("a --shared mailbox needs --primary ACCOUNT and no password (it logs in with the primary's)")
    if shared and not login_format:
        fail("a --shared mailbox needs --login-format exchange|dovecot|plain (how its server takes the login)")
    primary_account, provider_id = None, None
    try:
        if oauth_name:
            provider_id = oauth.get(oauth_name).id
        if primary:
            primary_account = accounts.get(primary)
            if not incoming and not outgoing:
                incoming, outgoing = _urls(primary_account)
    except ConnectorError as exc:
        fail(str(exc))
    if not incoming and not outgoing:
        fail("give --incoming, --outgoing or both (leave one out for a send-only or receive-only account)")
    if oauth_name and (shared or password_stdin):
        fail("--oauth signs in with tokens: no --password-stdin, and not for a --shared mailbox (yet)")
    if not shared and not oauth_name and not password_stdin and (incoming or smtp_auth == "login"):
        fail(
            "--password-stdin is required: the password is read from standard input "
            "(a send-only relay without login: --smtp-auth none)"
        )
    try:
        in_proto, in_sec, in_host, in_port, folder = (
            parse_url(str(incoming), ("imap", "pop3")) if incoming else ("imap", "tls", "", 993, "")
        )
        _, out_sec, out_host, out_port, _ = (
            parse_url(str(outgoing), ("smtp",)) if outgoing else ("smtp", "starttls", "", 587, "")
        )
    except EndpointError as exc:
        fail(str(exc))
    if ca_file and tls_verify == "off":
        fail("--ca-file and --tls-verify off contradict each other")
    settings = AccountSettings(
        name=name,
        address=address,
        username=username or address,
        display_name=display_name,
        password=read_secret_line() if password_stdin else None,
        primary_account_id=primary_account.id if primary_account is not None else None,
        auth_method="oauth" if oauth_name else "password",
        oauth_provider_id=provider_id,
        login_format=login_format or "plain",
        incoming_protocol=in_proto,
        incoming_security=in_sec,
        incoming_host=in_host,
        incoming_port=in_port,
        folder=folder or "INBOX",
        outgoing_host=out_host,
        outgoing_port=out_port,
        outgoing_security=out_sec,
        smtp_auth=smtp_auth,
        timeout=timeout,
        **(
            _certificates_of(primary_account)
            if primary_account and not (ca_file or tls_verify)
            else {
                "tls_verify": "off" if tls_verify == "off" else ("custom" if ca_file else "system"),
                "ca_cert_pem": read_ca_file(ca_file) if ca_file else None,
            }
        ),
        fetch_count=count,
    )
    try:
        account = accounts.create(settings)
    except ConnectorError as exc:
        fail(str(exc))
    if account.tls_verify == "off":
        click.echo("warning: TLS certificate verification is off for this account", err=True)
    click.echo(f"account {account.name} added")


@group.command("update")
@click.argument("name")
@click.option("--strategy", type=click.Choice(["latest", "replicate"]), help="Latest N, or every message.")
@click.option("--order", type=click.Choice(["newest", "oldest"]), help="Latest N: the newest or the oldest.")
@click.option("--count", type=click.IntRange(1, 100_000), help="N for --strategy latest.")
@click.option("--batch-size", type=click.IntRange(1, MAX_BATCH_SIZE), help="Messages per batch.")
@click.option("--folder", "folders", multiple=True, help="IMAP folder to fetch (repeat; replaces the list).")
@click.option(
    "--max-size", type=click.IntRange(0, MAX_MESSAGE_SIZE), metavar="BYTES", help="Bigger: headers only. 0: no limit."
)
@click.option(
    "--every", type=click.IntRange(0, MAX_FETCH_EVERY_MINUTES), metavar="MINUTES", help="Fetch periodically; 0: off."
)
@click.option("--after-fetch", metavar="none|seen|move:FOLDER|delete", help="What to do on the server afterwards.")
@click.option(
    "--max-send-attempts", type=click.IntRange(1, MAX_SEND_ATTEMPTS), help="Queued mail: attempts, then FAILED."
)
@click.option(
    "--send-connections", type=click.IntRange(1, MAX_SEND_CONNECTIONS), help="Queued mail: SMTP connections at once."
)
@click.option(
    "--send-per-minute", type=click.IntRange(0, MAX_SEND_PER_MINUTE), help="Queued mail: a rate limit; 0: none."
)
@click.option("--append-to-sent/--no-append-to-sent", default=None, help="Copy sent mail to the server's Sent folder.")
def update(
    name: str,
    strategy: str | None,
    order: str | None,
    count: int | None,
    batch_size: int | None,
    folders: tuple[str, ...],
    max_size: int | None,
    every: int | None,
    after_fetch: str | None,
    max_send_attempts: int | None,
    send_connections: int | None,
    send_per_minute: int | None,
    append_to_sent: bool | None,
) -> None:
    """Change how an account is fetched and sends queued mail; options not given keep their value."""
    try:
        account = accounts.get(name)
        settings = accounts.settings_of(account)
        changes: dict[str, Any] = {
            "fetch_strategy": strategy,
            "fetch_order": order,
            "fetch_count": count,
            "batch_size": batch_size,
            "max_message_size": max_size,
            "fetch_every_minutes": every,
            "folders": list(folders) or None,
            "max_send_attempts": max_send_attempts,
            "send_connections": send_connections,
            "send_per_minute": send_per_minute,
            "append_to_sent": append_to_sent,
        }
        if after_fetch is not None:
            action, _, target = after_fetch.partition(":")
            if (action == "move") != bool(target) or action not in ("none", "seen", "move", "delete"):
                fail("--after-fetch: none, seen, move:FOLDER or delete")
            changes.update(after_fetch=action, after_fetch_folder=target)
        settings = replace(settings, **{k: v for k, v in changes.items() if v is not None})
        if folders:
            settings = replace(settings, folder=folders[0])
        accounts.update(account, settings)
        restarted = subscriptions.settings_changed(account)
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"account {account.name} updated" + ("; its subscription connects again" if restarted else ""))


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def list_accounts(as_json: bool) -> None:
    """List accounts (never their passwords)."""
    rows = [describe(account) for account in accounts.all_accounts()]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        incoming, outgoing = row["incoming"] or "-", row["outgoing"] or "-"
        click.echo(f"{row['name']}\t{row['address']}\t{incoming}\t{outgoing}")


@group.command("test")
@click.argument("name")
def test(name: str) -> None:
    """Log in to the account's servers (a send-only or receive-only account has one); exit 0 only when each
    accepts the login."""
    try:
        report = connection.test_connection(accounts.get(name))
    except ConnectorError as exc:
        fail(str(exc))
    for check in (report.incoming, report.outgoing):
        outcome = "skipped" if not check.used else "ok" if check.ok else "FAILED"
        click.echo(f"{outcome}\t{check.server}\t{check.message}", err=not check.ok)
    if not report.ok:
        raise SystemExit(1)


@group.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: removes the account and its stored messages.")
def remove(name: str, yes: bool) -> None:
    """Remove an account and everything stored for it (nothing on the server)."""
    if not yes:
        fail("this removes the account and its stored messages; add --yes to confirm")
    try:
        accounts.remove(accounts.get(name))
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"account {name} removed")


def register(cli: click.Group) -> None:
    """Add the ``accounts`` commands to ``cli``."""
    cli.add_command(group)
