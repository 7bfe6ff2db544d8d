"""The ``run`` fixture: invoke ``email-connector`` in-process on the test app."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from flask import Flask

from webapp.cli import cli
from webapp.cli.instance import Instance


@pytest.fixture
def run(app: Flask) -> Callable[..., Result]:
    runner = CliRunner()

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return runner.invoke(cli, list(args), input=stdin, obj=Instance(app))

    return invoke
