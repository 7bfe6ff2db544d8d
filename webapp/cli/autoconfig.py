"""``email-connector autoconfig ADDRESS``: the mail servers found for an address, and where from."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from webapp.adapters.autoconfig.settings import Provider
from webapp.adapters.mail.endpoint import format_url
from webapp.cli.common import fail, print_json
from webapp.services.account import autoconfig, setup
from webapp.services.errors import ConnectorError

# The source as a person reads it (the JSON keeps the short keys of docs/autoconfig.md).
SOURCES = {"preset": "built-in", "autoconfig": "domain file", "mx": "MX", "srv": "SRV"}


def _as_options(provider: Provider) -> str:
    """The provider's preferred servers as ``accounts add`` takes them (IMAP before POP3)."""
    suggestion = setup.of_provider(provider)
    options = []
    if suggestion.incoming is not None:
        s = suggestion.incoming
        folder = "INBOX" if s.protocol == "imap" else ""
        options.append(f"--incoming {format_url(s.protocol, s.security, s.host, s.port, folder)}")
        options.append(f"--username {s.username}" if s.username else "")
    if suggestion.outgoing is not None:
        s = suggestion.outgoing
        options.append(f"--outgoing {format_url('smtp', s.security, s.host, s.port)}")
    return " ".join(option for option in options if option) + " --password-stdin"


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
            click.echo(f"{SOURCES.get(provider.source, provider.source)}\t{provider.name}\t(from {provider.origin})")
            for setting in (*provider.incoming, *provider.outgoing):
                login = f"login {setting.username}" + ("" if setting.auth == "password" else f" ({setting.auth})")
                click.echo(f"  {setting.protocol}\t{setting.host}:{setting.port}\t{setting.security}\t{login}")
            for note in provider.notes:
                click.echo(f"  note: {note}")
            if any(s.auth == "oauth2" for s in (*provider.incoming, *provider.outgoing)):
                click.echo("  note: OAuth 2.0 sign-in comes with a later version; a password works only where allowed")
            click.echo(f"  accounts add NAME --address {found.address} {_as_options(provider)}")
    if not found.providers:
        fail(f"no configuration found for {found.address}: enter the servers by hand")


def register(cli: click.Group) -> None:
    """Add ``autoconfig`` to ``cli``."""
    cli.add_command(autoconfig_command)
