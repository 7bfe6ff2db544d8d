"""System packages the suite needs: a missing one fails the suite with the apt command to run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

APT = "apt-get install -y dovecot-imapd dovecot-pop3d chromium openssl"
NEEDED = {
    "dovecot": "dovecot-imapd dovecot-pop3d",
    "doveadm": "dovecot-core",
    "openssl": "openssl",
}
CHROMIUM = Path("/usr/bin/chromium")


def require(command: str) -> str:
    path = shutil.which(command, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        pytest.fail(
            f"the test suite needs {command!r} (Debian package {NEEDED.get(command, command)}). "
            f"Run: {APT}   (or .ci/run, which installs everything)",
            pytrace=False,
        )
    return path


def require_chromium() -> str:
    if not CHROMIUM.exists():
        pytest.fail(f"the browser tests need /usr/bin/chromium. Run: {APT}", pytrace=False)
    return str(CHROMIUM)
