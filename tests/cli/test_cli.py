"""The ``email-connector`` command: users, accounts, keys, exactly as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from tests.servers.dovecot import Dovecot
from tests.servers.pki import Pki
from tests.servers.smtp import SmtpServer
from webapp.adapters import redisserver
from webapp.services.account import accounts
from webapp.services.identity import users


def test_users_commands(run: Callable[..., Result], make_account) -> None:
    assert run("users", "create-admin", "root", "--password-stdin", stdin="s3cret password\n").exit_code == 0
    assert users.get("root").is_admin
    assert run("users", "add", "bob", "--password-stdin", stdin="bob password 1\n").exit_code == 0
    duplicate = run("users", "add", "BOB", "--password-stdin", stdin="bob password 1\n")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    short = run("users", "add", "carol", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "at least 8" in short.output
    make_account(name="Work")
    assert run("users", "grant", "bob", "work", "--read", "--send").exit_code == 0
    listed = run("users", "list", "--json")
    rows = json.loads(listed.stdout)
    assert {r["username"]: r["role"] for r in rows} == {"root": "admin", "bob": "user"}
    bob = next(r for r in rows if r["username"] == "bob")
    assert bob["accounts"] == [{"account": "Work", "read": True, "send": True}]
    assert run("users", "set-password", "bob", "--password-stdin", stdin="new bob password  \n").exit_code == 0
    # Only the newline is stripped: trailing spaces belong to the password.
    assert users.authenticate("bob", "new bob password  ", None) is not None
    assert run("users", "grant", "nobody", "work", "--read").exit_code == 1


def test_accounts_commands(
    run: Callable[..., Result], dovecot: Dovecot, smtp: SmtpServer, pki: Pki, mail_user, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text(pki.ca_pem.read_text())
    added = run(
        "accounts", "add", "Work",
        "--address", "alice@example.test",
        "--username", "alice",
        "--password-stdin",
        "--incoming", f"imaps://127.0.0.1:{dovecot.imaps_port}/INBOX",
        "--outgoing", f"smtp+starttls://127.0.0.1:{smtp.port}",
        "--ca-file", str(ca),
        "--timeout", "5",
        "--count", "25",
        stdin="alice-mail-pw\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = json.loads(run("accounts", "list", "--json").stdout)
    assert listed == [
        {
            "name": "Work",
            "address": "alice@example.test",
            "display_name": "",
            "username": "alice",
            "incoming": f"imaps://127.0.0.1:{dovecot.imaps_port}/INBOX",
            "outgoing": f"smtp+starttls://127.0.0.1:{smtp.port}",
            "shared": False,
            "primary": None,
            "login_format": None,
            "sign_in": "password",
            "oauth_provider": None,
            "smtp_auth": "login",
            "tls_verify": "custom",
            "timeout": 5,
            "count": 25,
            "sanitize_html": True,
            "strategy": "latest",
            "order": "newest",
            "batch_size": 100,
            "folders": ["INBOX"],
            "max_size": 50 * 1024 * 1024,
            "every": 0,
            "after_fetch": "none",
            "max_send_attempts": 3,
            "send_connections": 1,
            "send_per_minute": 0,
            "append_to_sent": False,
        }
    ]
    assert "alice-mail-pw" not in run("accounts", "list", "--json").stdout
    tested = run("accounts", "test", "work")
    assert tested.exit_code == 0, tested.output
    assert "IMAP login OK" in tested.output

    duplicate = run(
        "accounts", "add", "WORK", "--address", "a@example.test", "--username", "a", "--password-stdin",
        "--incoming", "pop3s://127.0.0.1", "--outgoing", "smtps://127.0.0.1", stdin="x\n",
    )  # fmt: skip
    assert duplicate.exit_code == 1 and "already exists" in duplicate.output
    bad_scheme = run(
        "accounts", "add", "Other", "--address", "a@example.test", "--username", "a", "--password-stdin",
        "--incoming", "http://127.0.0.1", "--outgoing", "smtps://127.0.0.1", stdin="x\n",
    )  # fmt: skip
    assert bad_scheme.exit_code == 1 and "unsupported scheme 'http'" in bad_scheme.output

    # A POP3 account with the wrong password: exit 1 and the reason.
    run(
        "accounts", "add", "Pop", "--address", "alice@example.test", "--username", "alice", "--password-stdin",
        "--incoming", f"pop3://127.0.0.1:{dovecot.pop3_port}", "--outgoing", f"smtp://127.0.0.1:{smtp.port}",
        "--smtp-auth", "none", "--tls-verify", "off", stdin="wrong password\n",
    )  # fmt: skip
    failed = run("accounts", "test", "Pop")
    assert failed.exit_code == 1
    assert "authentication failed" in failed.output
    assert "SMTP connection OK (no authentication)" in failed.output
    assert "wrong password" not in failed.output

    assert run("accounts", "remove", "Pop").exit_code == 1  # needs --yes
    assert run("accounts", "remove", "Pop", "--yes").exit_code == 0
    assert accounts.find("Pop") is None


def test_keys_rotate_re_encrypts_every_secret(
    app: Flask, run: Callable[..., Result], make_account, tmp_path: Path
) -> None:
    from sqlalchemy import text

    from webapp.adapters.storage.secretbox import SecretBox, generate_key
    from webapp.extensions import db

    make_account(name="One")
    make_account(name="Two")
    old_keys = list(app.config["ENCRYPTION_KEYS"])
    keyfile = tmp_path / "encryption_keys"
    keyfile.write_text("\n".join(old_keys) + "\n")
    app.config["ENCRYPTION_KEYS_FILE"] = str(keyfile)  # as on the embedded defaults
    result = run("keys", "rotate")
    assert result.exit_code == 0, result.output
    assert "2 secret(s) re-encrypted" in result.output
    new_keys = keyfile.read_text().split()
    assert new_keys[1:] == old_keys and len(new_keys) == 2
    tokens = db.session.execute(text("select password_encrypted from email_account")).scalars().all()
    assert all(SecretBox([new_keys[0]]).decrypt(token) == "alice-mail-pw" for token in tokens)
    # Rerunning (say, after an interruption) is safe: every secret still decrypts.
    assert run("keys", "rotate").exit_code == 0
    assert accounts.incoming_auth(accounts.get("One")).password == "alice-mail-pw"
    assert len(generate_key()) == 44


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("email-connector")
    return subprocess.run([str(exe), *args], input=stdin, capture_output=True, text=True, env=env, timeout=120)


def test_installed_command_on_the_embedded_defaults(tmp_path: Path) -> None:
    """A fresh instance folder: keys generated once, migrations applied, secrets readable after rotate."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMAILCONNECTOR_", "DATABASE_URL", "REDIS_URL"))}
    env["EMAILCONNECTOR_INSTANCE_PATH"] = str(tmp_path / "instance")
    upgraded = _cli(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "Back this file up" in upgraded.stderr
    keys = (tmp_path / "instance" / "encryption_keys").read_text()
    assert oct((tmp_path / "instance" / "encryption_keys").stat().st_mode & 0o777) == "0o600"
    assert _cli(env, "db", "upgrade").returncode == 0
    assert (tmp_path / "instance" / "encryption_keys").read_text() == keys  # generated once
    added = _cli(
        env, "accounts", "add", "Work", "--address", "a@example.test", "--username", "a", "--password-stdin",
        "--incoming", "imaps://127.0.0.1", "--outgoing", "smtps://127.0.0.1", stdin="the secret\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert b"the secret" not in (tmp_path / "instance" / "email-connector.db").read_bytes()
    rotated = _cli(env, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert "1 secret(s) re-encrypted" in rotated.stdout
    assert len((tmp_path / "instance" / "encryption_keys").read_text().split()) == 2
    listed = _cli(env, "accounts", "list", "--json")
    assert json.loads(listed.stdout)[0]["name"] == "Work"
    token = _cli(env, "setup-token")
    assert token.returncode == 0 and len(token.stdout.strip()) >= 20
    assert _cli(env, "users", "create-admin", "root", "--password-stdin", stdin="root password 1\n").returncode == 0
    assert _cli(env, "setup-token").returncode == 1


def test_the_app_refuses_to_start_without_keys_on_shared_services(migrated: dict[str, Any]) -> None:
    from webapp import create_app
    from webapp.config import ConfigError

    config = {k: v for k, v in migrated.items() if k not in ("SECRET_KEY", "ENCRYPTION_KEYS")}
    with pytest.raises(ConfigError, match="EMAILCONNECTOR_ENCRYPTION_KEYS must be set"):
        create_app(config)


def test_up_starts_redis_worker_and_web_and_stops_them(tmp_path: Path) -> None:
    """What `make run` starts: embedded Redis, a worker and the web server, with the setup token."""
    import signal
    import time
    import urllib.request

    from tests.servers.ports import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith(("EMAILCONNECTOR_", "DATABASE_URL", "REDIS_URL"))}
    env["EMAILCONNECTOR_INSTANCE_PATH"] = str(tmp_path / "instance")
    assert _cli(env, "db", "upgrade").returncode == 0
    port = free_port()
    exe = Path(sys.executable).with_name("email-connector")
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        process = subprocess.Popen([str(exe), "up", "--port", str(port)], env=env, stdout=out, stderr=out)
        try:
            health = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                        health = json.loads(response.read())
                        break
                except OSError:
                    time.sleep(0.2)
            assert health == {"status": "ok", "database": "ok", "redis": "ok"}, log.read_text()
            assert (tmp_path / "instance" / "redis.sock").exists()
            deadline = time.monotonic() + 30
            while "Listening on fetch, send, default" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert "Listening on fetch, send, default" in log.read_text()
            assert "one-time setup token:" in log.read_text()
            # A command meanwhile uses up's Redis and leaves it running (issue 9: the CLI on its own).
            socket_path = tmp_path / "instance" / "redis.sock"
            assert redisserver.owner_of(socket_path) == (process.pid, "email-connector up")
            due = _cli(env, "fetch-due")
            assert due.returncode == 0 and "Traceback" not in due.stderr, due.stderr
            assert redisserver.answers(socket_path)
            assert redisserver.owner_of(socket_path) == (process.pid, "email-connector up")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    assert "stopped" in log.read_text()
    assert not redisserver.answers(socket_path)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AUTOCONFIG_ALLOW_PRIVATE", "no", False),
        ("AUTOCONFIG_ALLOW_PRIVATE", "Yes", True),
        ("WEBHOOK_ALLOW_PRIVATE", "off", False),
        ("AUTOCONFIG_TIMEOUT_SECONDS", "2.5", 2.5),
        ("AUTOCONFIG_HTTPS_PORT", " 8443 ", 8443),
    ],
)
def test_settings_from_the_environment_are_read_as_what_they_are(
    make_app: Any, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: object
) -> None:
    """Found by the new-user review: EMAILCONNECTOR_AUTOCONFIG_ALLOW_PRIVATE=no switched it on."""
    monkeypatch.setenv(f"EMAILCONNECTOR_{name}", value)
    assert make_app().config[name] == expected


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("AUTOCONFIG_ALLOW_PRIVATE", "maybe", "'maybe' is not true or false"),
        ("AUTOCONFIG_TIMEOUT_SECONDS", "abc", "'abc' is not a number"),
        ("SEND_LEASE_SECONDS", "ten", "'ten' is not a whole number"),
        # JSON values come as what they are: numbers, true.
        ("SEND_LEASE_SECONDS", "2.5", "2.5 is not a whole number"),
        ("AUTOCONFIG_TIMEOUT_SECONDS", "0", r"0 is out of range \(above 0, at most 315360000\)"),
        ("SEND_LEASE_SECONDS", "0", r"0 is out of range \(at least 1, at most 315360000\)"),
        ("LOGIN_MAX_FAILURES", "-3", r"-3 is out of range \(at least 1\)"),
        ("PROXY_FIX_X_FOR", "-1", r"-1 is out of range \(at least 0\)"),
        ("AUTOCONFIG_HTTPS_PORT", "70000", r"70000 is out of range \(at least 1, at most 65535\)"),
        (
            "SESSION_IDLE_SECONDS",
            "1000000000000000",
            r"1000000000000000 is out of range \(at least 1, at most 315360000\)",
        ),
        ("AUTOCONFIG_TIMEOUT_SECONDS", "NaN", "nan is not a number"),
        ("SUBSCRIPTION_BACKOFF_MAX_SECONDS", "Infinity", "inf is not a number"),
        ("FETCH_WAIT_SECONDS", "true", "True is not a number"),
    ],
)
def test_a_setting_of_the_wrong_kind_stops_the_app_with_its_name(
    migrated: dict[str, Any], monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    from webapp import create_app
    from webapp.config import ConfigError

    monkeypatch.setenv(f"EMAILCONNECTOR_{name}", value)
    with pytest.raises(ConfigError, match=f"EMAILCONNECTOR_{name}: {says}"):
        create_app(dict(migrated))
