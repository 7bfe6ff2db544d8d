"""``email-connector autoconfig ADDRESS``: the mail servers found for an address, and where from."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from webapp.cli.common import fail, print_json
from webapp.services.account import autoconfig
from webapp.services.errors import ConnectorError


@click.command("autoconfig")
@click.argument("address")
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
@with_appcontext
def autoconfig_command(address: str, as_json: bool) -> None:
    """Find the servers of ADDRESS: a built-in preset, the domain's autoconfig file, its MX, its SRV records."""
    try:
        found = autoconfig.discover(address)
    except ConnectorError as exc:
        fail(str(exc))
    for problem in found.problems:
        click.echo(f"warning: {problem}", err=True)
    if as_json:
        print_json(found.as_dict())
    else:
        for provider in found.providers:
            click.echo(f"{provider.source}\t{provider.name}\t(from {provider.origin})")
            for setting in (*provider.incoming, *provider.outgoing):
                login = f"login {setting.username}" + ("" if setting.auth == "password" else f" ({setting.auth})")
                click.echo(f"  {setting.protocol}\t{setting.host}:{setting.port}\t{setting.security}\t{login}")
            for note in provider.notes:
                click.echo(f"  note: {note}")
    if not found.providers:
        fail(f"no configuration found for {found.address}: enter the servers by hand")


def register(cli: click.Group) -> None:
    """Add ``autoconfig`` to ``cli``."""
    cli.add_command(autoconfig_command)
