"""``email-connector oauth …``: OAuth 2.0 providers (app registrations) that accounts sign in with."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from webapp.cli.common import fail, print_json, read_ca_file, read_secret_line
from webapp.models import OAuthProvider
from webapp.models.oauth import DEFAULT_AUTHORITY, FLOWS
from webapp.services.account import oauth
from webapp.services.account.oauth import ProviderSettings
from webapp.services.errors import ConnectorError

group = AppGroup("oauth", help="OAuth 2.0 providers: app registrations that accounts sign in with (docs/oauth.md).")


def describe(provider: OAuthProvider) -> dict[str, object]:
    """A provider as ``oauth list`` prints it (never its secret)."""
    return {
        "name": provider.name,
        "flow": provider.flow,
        "client_id": provider.client_id,
        "tenant_id": provider.tenant_id,
        "authority": provider.authority,
        "callback_path": provider.callback_path,
        "custom_ca": bool(provider.ca_cert_pem),
        "accounts": [account.name for account in oauth.users_of(provider)],
    }


@group.command("add")
@click.argument("name")
@click.option("--flow", type=click.Choice(FLOWS), required=True, help="client_credentials: app-only access.")
@click.option("--client-id", required=True, help="The app registration's application (client) ID.")
@click.option("--client-secret-stdin", is_flag=True, required=True, help="Read the client secret from stdin.")
@click.option("--tenant-id", default="organizations", show_default=True, help="The directory's ID or domain.")
@click.option("--callback-path", default="", help="Authorization code: the path under /mxecoh/.")
@click.option("--authority", default=DEFAULT_AUTHORITY, show_default=True, help="Another cloud, or a test server.")
@click.option(
    "--ca-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The authority's CA (PEM)."
)
def add(
    name: str,
    flow: str,
    client_id: str,
    client_secret_stdin: bool,
    tenant_id: str,
    callback_path: str,
    authority: str,
    ca_file: Path | None,
) -> None:
    """Add an OAuth provider; its client secret is read from stdin and stored encrypted."""
    pem = read_ca_file(ca_file) if ca_file is not None else None
    settings = ProviderSettings(
        name=name,
        flow=flow,
        client_id=client_id,
        client_secret=read_secret_line(),
        tenant_id=tenant_id,
        authority=authority,
        callback_path=callback_path,
        ca_cert_pem=pem,
    )
    try:
        provider = oauth.create(settings)
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"OAuth provider {provider.name} added")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON only.")
def list_providers(as_json: bool) -> None:
    """List the OAuth providers (never their secrets)."""
    rows = [describe(provider) for provider in oauth.all_providers()]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        click.echo(f"{row['name']}\t{row['flow']}\t{row['client_id']}\t{row['tenant_id']}\t{row['authority']}")


@group.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove an OAuth provider that no account signs in with."""
    try:
        oauth.remove(oauth.get(name))
    except ConnectorError as exc:
        fail(str(exc))
    click.echo(f"OAuth provider {name} removed")


def register(cli: click.Group) -> None:
    """Add ``oauth`` to ``cli``."""
    cli.add_command(group)
