"""The layering contracts (import-linter) and the public interface's exported names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import webapp.connector

ROOT = Path(__file__).resolve().parent.parent


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_connector_exports_exactly_its_public_names() -> None:
    public = {
        name
        for name, value in vars(webapp.connector).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("webapp")
    }
    assert set(webapp.connector.__all__) == public
