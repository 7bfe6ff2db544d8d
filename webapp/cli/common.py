"""Helpers shared by the commands: secrets from stdin, JSON output, failing with a reason."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import click


def read_secret_line() -> str:
    """Read one line from stdin, without its trailing newline."""
    line = sys.stdin.readline()
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    if not line:
        fail("expected the secret on standard input (one line)")
    return line


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``: a command's failure in one line."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def print_json(value: Any) -> None:
    """Print ``value`` as indented JSON, non-ASCII as it is (the ``--json`` output)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))
