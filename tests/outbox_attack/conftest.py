from tests.cli.conftest import run  # noqa: F401 - the CLI runner fixture
