"""``email-connector blobs gc``: remove stored bytes that no message or attachment names any more."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from webapp.cli.common import print_json
from webapp.services.platform import blobs

group = AppGroup("blobs", help="The blob store (message and attachment bytes).")


@group.command("gc")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Spare blobs used this recently (default: BLOB_GC_GRACE_SECONDS, 3600; never less than 60).",
)
@click.option("--json", "as_json", is_flag=True, help="Print only JSON on stdout.")
def gc(dry_run: bool, grace: float | None, as_json: bool) -> None:
    """Remove the blobs nothing names any more (the schedule does this hourly)."""
    found = blobs.collect_garbage(dry_run=dry_run, grace_seconds=grace)
    if as_json:
        print_json({"blobs": found.count, "bytes": found.bytes, "dry_run": found.dry_run})
        return
    verb = "would remove" if dry_run else "removed"
    click.echo(f"{verb} {found.count} blob(s), {found.bytes} bytes")


def register(cli: click.Group) -> None:
    """Add the ``blobs`` commands to ``cli``."""
    cli.add_command(group)
