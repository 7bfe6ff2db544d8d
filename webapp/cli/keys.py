"""``email-connector keys …`` and ``setup-token``: the secrets of the installation."""

from __future__ import annotations

import click
from flask.cli import AppGroup, with_appcontext

from webapp.adapters.storage.secretbox import SecretBoxError, generate_key
from webapp.cli.common import fail
from webapp.services.errors import ConnectorError
from webapp.services.identity import setup
from webapp.services.platform import secretstore

group = AppGroup("keys", help="Encryption keys for secrets at rest.")


@group.command("generate", with_appcontext=False)
def generate() -> None:
    """Print a new Fernet key (for EMAILCONNECTOR_ENCRYPTION_KEYS)."""
    click.echo(generate_key())


@group.command("rotate")
def rotate() -> None:
    """Add a new key first and re-encrypt every stored secret; safe to rerun if interrupted."""
    try:
        added, count = secretstore.rotate_keys()
    except (ConnectorError, SecretBoxError) as exc:
        fail(str(exc))
    if added:
        click.echo("a new key was added first to the instance key file; back it up", err=True)
    else:
        click.echo("re-encrypted under the first key of EMAILCONNECTOR_ENCRYPTION_KEYS", err=True)
    click.echo(f"{count} secret(s) re-encrypted")


@click.command("setup-token")
@with_appcontext
def setup_token() -> None:
    """Print a new one-time setup token (only while no user exists)."""
    token = setup.issue_token()
    if token is None:
        fail("setup is done: a user exists")
    click.echo(token)


def register(cli: click.Group) -> None:
    """Add the ``keys`` commands and ``setup-token`` to ``cli``."""
    cli.add_command(group)
    cli.add_command(setup_token)
