"""Helpers shared by the commands: secrets and CA files, JSON output, failing with a reason."""

from __future__ import annotations

import json
import sys
from pathlib import Path
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


def read_ca_file(path: Path) -> str:
    """The CA file's PEM text; one line naming the problem for a file that is not one."""
    data = path.read_bytes()
    if len(data) > 64 * 1024 or b"-----BEGIN CERTIFICATE-----" not in data:
        fail(f"--ca-file {path}: not a PEM certificate file (-----BEGIN CERTIFICATE-----, at most 64 KiB)")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        fail(f"--ca-file {path}: a PEM file is plain ASCII text")
