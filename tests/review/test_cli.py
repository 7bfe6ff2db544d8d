"""The command line: over-long values on PostgreSQL (varchar limits) and secrets."""

from __future__ import annotations

import pytest
from flask import Flask

from webapp.services.account import accounts

LONG_CASES = {
    "display name 201": ["--display-name", "D" * 201],
    "folder 300": ["--incoming-folder", "F" * 300],
    "host 300": [
        "--incoming-host",
        "h" * 60 + "." + "h" * 60 + "." + "h" * 60 + "." + "h" * 60 + "." + "h" * 60 + ".test",
    ],
    "username 400": ["--username", "u" * 400],
}


@pytest.mark.parametrize("case", sorted(LONG_CASES))
def test_accounts_add_with_an_over_long_value_is_one_line_not_a_traceback(run, app: Flask, case: str) -> None:
    display, folder, host, username = "", "INBOX", "127.0.0.1", "alice"
    option, value = LONG_CASES[case]
    if option == "--display-name":
        display = value
    elif option == "--incoming-folder":
        folder = value
    elif option == "--incoming-host":
        host = value
    else:
        username = value
    result = run(
        "accounts",
        "add",
        "Long",
        "--address",
        "a@example.test",
        "--username",
        username,
        "--display-name",
        display,
        "--password-stdin",
        "--incoming",
        f"imaps://{host}:993/{folder}",
        "--outgoing",
        "smtp://127.0.0.1:25",
        stdin="pw\n",
    )
    text = result.output + (
        repr(result.exception) if result.exception and not isinstance(result.exception, SystemExit) else ""
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), text[-2000:]
    assert "Traceback" not in text, text[-2000:]


def test_accounts_update_with_an_over_long_folder(run, app: Flask, make_account) -> None:
    make_account()
    result = run("accounts", "update", "Work", "--after-fetch", "move:" + "M" * 300)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    result = run("accounts", "update", "Work", "--folder", "F" * 256)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def test_service_create_with_an_over_long_display_name_is_invalid_not_a_database_error(make_account) -> None:
    from webapp.services.errors import ConnectorError

    try:
        make_account(name="Long2", display_name="D" * 201)
    except ConnectorError:
        return
    except Exception as exc:
        pytest.fail(f"{type(exc).__name__}: {str(exc)[:200]}")
    # SQLite stores it; PostgreSQL would refuse
    assert len(accounts.find("Long2").display_name) <= 200


import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

EXE = Path(sys.executable).with_name("email-connector")


def _fresh_env(instance: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EMAILCONNECTOR_") and k not in ("DATABASE_URL", "REDIS_URL")
    }
    env["EMAILCONNECTOR_INSTANCE_PATH"] = instance
    return env


@pytest.mark.parametrize("args", [("accounts", "list"), ("db", "upgrade"), ("fetch-due",), ("users", "list")])
def test_a_relative_instance_path_is_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    done = subprocess.run(
        [str(EXE), *args], env=_fresh_env("instance"), cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in done.stderr, done.stderr[-600:]


def test_an_instance_path_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    done = subprocess.run(
        [str(EXE), "db", "upgrade"],
        env=_fresh_env(str(afile)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in done.stderr, done.stderr[-600:]


def test_cli_set_password_and_grant_end_or_keep_sessions_as_documented(run, app: Flask, make_user) -> None:
    from tests.review.helpers import client_as

    make_user("bob")
    bob = client_as(app, "bob")
    result = run("users", "set-password", "bob", "--password-stdin", stdin="another long password\n")
    assert result.exit_code == 0, result.output
    assert bob.get("/").status_code == 302
