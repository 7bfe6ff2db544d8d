"""`make run` installs only what running needs; the test and lint tools come with `make test`."""

from __future__ import annotations

import subprocess
from pathlib import Path

from webapp.config import PROJECT_ROOT


def _planned(target: str, tmp_path: Path) -> list[str]:
    """The commands ``make TARGET`` would run from scratch (a dry run against a venv that does not exist)."""
    done = subprocess.run(
        ["make", "-C", str(PROJECT_ROOT), "-n", "-B", target, f"VENV={tmp_path / 'venv'}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [line for line in done.stdout.splitlines() if "pip install" in line]


def test_make_run_installs_no_dev_tools(tmp_path: Path) -> None:
    for target in ("install", "run"):
        (pip,) = _planned(target, tmp_path)
        assert pip.endswith("-c requirements.lock -e ."), pip
        assert "[dev]" not in pip


def test_make_test_adds_the_dev_extras_under_the_same_constraints(tmp_path: Path) -> None:
    for target in ("test", "lint"):
        plain, dev = _planned(target, tmp_path)
        assert plain.endswith("-e .") and dev.endswith("-c requirements.lock -e '.[dev]'"), (plain, dev)
