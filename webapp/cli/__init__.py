"""The ``email-connector`` command: run, up, worker, scheduler, db, users, accounts, keys, send, fetch, folders,
messages, send-queued, outbox, webhooks, blobs."""

from __future__ import annotations

import click

from webapp.cli.instance import Cli, Migrations


@click.group(cls=Cli)
@click.version_option(package_name="email-connector", prog_name="email-connector", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Email Connector: connect mail accounts; send mail, fetch what arrives, read and search it."""
    from webapp.database import checked_writes

    ctx.with_resource(checked_writes())


def _register() -> None:
    from flask_migrate.cli import db

    from webapp.cli import accounts, autoconfig, blobs, keys, mail, oauth, outbox, serve, subscriptions, users, webhooks

    for module in (serve, users, accounts, oauth, autoconfig, keys, mail, outbox, subscriptions, webhooks, blobs):
        module.register(cli)
    cli.add_command(Migrations.of(db))


_register()


def main() -> None:
    """Run the ``email-connector`` command (the console script's entry point)."""
    cli.main(prog_name="email-connector")
