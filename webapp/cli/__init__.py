"""The ``email-connector`` command: run, up, worker, db, users, accounts, keys, send, fetch, messages."""

from __future__ import annotations

import click
from flask.cli import FlaskGroup

from webapp import create_app


def _create_app() -> object:
    return create_app()


@click.group(
    cls=FlaskGroup,
    create_app=_create_app,
    add_default_commands=False,
    load_dotenv=False,
    set_debug_flag=False,
)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Email Connector: connect mail accounts; send, receive, template and queue email."""
    from webapp.database import checked_writes

    ctx.with_resource(checked_writes())


def _register() -> None:
    from webapp.cli import accounts, blobs, keys, mail, serve, users, webhooks

    for module in (serve, users, accounts, keys, mail, webhooks, blobs):
        module.register(cli)


_register()


def main() -> None:
    cli.main(prog_name="email-connector")
