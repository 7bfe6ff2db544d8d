"""The command-line fixture for the review probes (tests/cli's own)."""

from tests.cli.conftest import run  # noqa: F401 - a fixture, used by name
