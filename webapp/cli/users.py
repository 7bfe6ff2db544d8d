"""``email-connector users …``: create-admin, add, list, grant, set-password."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import AppGroup

from webapp.cli.common import fail, print_json, read_secret_line
from webapp.models.user import ROLE_ADMIN, ROLE_USER
from webapp.services.account import accounts
from webapp.services.errors import ConnectorError
from webapp.services.identity import setup, users

group = AppGroup("users", help="Manage the app's users.")


@group.command("create-admin")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
def create_admin(name: str, password_stdin: bool) -> None:
    """Create an admin (also on a fresh install, instead of the setup token)."""
    try:
        user = users.create(name, read_secret_line(), ROLE_ADMIN)
        setup.discard_token()
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"admin {user.username} created")


@group.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Give the admin role.")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
def add(name: str, admin: bool, password_stdin: bool) -> None:
    """Add a user."""
    try:
        user = users.create(name, read_secret_line(), ROLE_ADMIN if admin else ROLE_USER)
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"{user.role} {user.username} created")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def list_users(as_json: bool) -> None:
    """List users, their roles and granted accounts."""
    rows: list[dict[str, Any]] = [
        {
            "username": user.username,
            "role": user.role,
            "created_at": user.created_at.isoformat(),
            "accounts": [
                {"account": g.account.name, "read": g.can_read, "send": g.can_send} for g in users.grants_of(user)
            ],
        }
        for user in users.all_users()
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        grants = ", ".join(
            f"{g['account']}({'r' if g['read'] else ''}{'s' if g['send'] else ''})" for g in row["accounts"]
        )
        click.echo(f"{row['username']}\t{row['role']}\t{grants}")


@group.command("grant")
@click.argument("name")
@click.argument("account")
@click.option("--read", is_flag=True, help="May read the account's mail.")
@click.option("--send", is_flag=True, help="May send from the account.")
def grant(name: str, account: str, read: bool, send: bool) -> None:
    """Set what a user may do with an account (neither --read nor --send removes the access)."""
    try:
        user = users.get(name)
        users.grant(user, accounts.get(account), read=read, send=send)
    except ConnectorError as exc:
        fail(str(exc))
    rights = " and ".join(r for r, on in (("read", read), ("send", send)) if on) or "no access"
    click.echo(f"{user.username}: {rights} on {account}")


@group.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
def set_password(name: str, password_stdin: bool) -> None:
    """Set a user's password (their other sessions end)."""
    try:
        users.set_password(users.get(name), read_secret_line())
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"password of {name} changed")


def register(cli: click.Group) -> None:
    """Add the ``users`` commands to ``cli``."""
    cli.add_command(group)
