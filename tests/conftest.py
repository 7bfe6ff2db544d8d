"""Fixtures: the real servers (once per session), the app on a fresh database, and factories."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete

from tests.servers import database as test_database
from tests.servers import pki as test_pki
from tests.servers import redis as test_redis
from tests.servers.dnsserver import DnsServer
from tests.servers.dovecot import Dovecot
from tests.servers.netguard import loopback_only  # noqa: F401 - autouse guard
from tests.servers.oauthserver import OAuthServer
from tests.servers.smtp import SmtpServer
from tests.servers.webfiles import WebFiles
from webapp.adapters.storage.secretbox import generate_key

TEST_PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def kit_dir() -> Iterator[Path]:
    # Short path: Unix socket paths are limited to 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="ec-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def pki(kit_dir: Path) -> test_pki.Pki:
    return test_pki.make(kit_dir / "pki")


@pytest.fixture(scope="session")
def oauth_kit(pki: test_pki.Pki) -> Iterator[OAuthServer]:
    """The kit's OAuth 2.0 server (HTTPS): tokens for mailbox users, introspection for Dovecot and SMTP."""
    server = OAuthServer(pki).start()
    yield server
    server.stop()


@pytest.fixture
def oauth_server(oauth_kit: OAuthServer) -> Iterator[OAuthServer]:
    """The kit's OAuth server, its clients, tokens and failure switch reset after the test."""
    yield oauth_kit
    oauth_kit.reset()


@pytest.fixture(scope="session")
def dovecot_server(kit_dir: Path, pki: test_pki.Pki, oauth_kit: OAuthServer) -> Iterator[Dovecot]:
    server = Dovecot(kit_dir / "dovecot", pki, oauth_introspection_url=oauth_kit.introspection_url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def dovecot(dovecot_server: Dovecot) -> Iterator[Dovecot]:
    yield dovecot_server
    dovecot_server.reset_mail()


@pytest.fixture(scope="session")
def smtp_server(dovecot_server: Dovecot, pki: test_pki.Pki, oauth_kit: OAuthServer) -> Iterator[SmtpServer]:
    server = SmtpServer(dovecot_server, pki, oauth=oauth_kit)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> Iterator[SmtpServer]:
    yield smtp_server
    smtp_server.reset()


@pytest.fixture(scope="session")
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def web_files_server(pki: test_pki.Pki) -> Iterator[WebFiles]:
    server = WebFiles(pki).start()
    yield server
    server.stop()


@pytest.fixture
def discovery(
    app: Flask, dns_server: DnsServer, web_files_server: WebFiles, pki: test_pki.Pki, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DnsServer, WebFiles]]:
    """The app's discovery pointed at the test kit's DNS and HTTPS servers (the kit's CA trusted)."""
    app.config.update(
        AUTOCONFIG_DNS_SERVERS=dns_server.address,
        AUTOCONFIG_HTTPS_PORT=web_files_server.port,
        AUTOCONFIG_TIMEOUT_SECONDS=5,  # generous: two suites share two cores in CI; the timing tests set 1
        AUTOCONFIG_ALLOW_PRIVATE=True,  # the kit's servers are on 127.0.0.1
    )
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca_pem))
    yield dns_server, web_files_server
    dns_server.reset()
    web_files_server.reset()


@pytest.fixture(scope="session")
def redis_server(kit_dir: Path) -> Iterator[test_redis.TestRedis]:
    server = test_redis.start(kit_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def test_db(kit_dir: Path) -> Iterator[test_database.TestDatabase]:
    database = test_database.create(kit_dir)
    yield database
    database.drop()


@pytest.fixture(scope="session")
def keys() -> dict[str, Any]:
    return {"SECRET_KEY": "test-secret-key-" + "x" * 32, "ENCRYPTION_KEYS": generate_key()}


@pytest.fixture(scope="session")
def instance_dir(kit_dir: Path) -> Path:
    folder = kit_dir / "instance"
    folder.mkdir()
    return folder


@pytest.fixture(scope="session")
def base_config(
    test_db: test_database.TestDatabase,
    redis_server: test_redis.TestRedis,
    keys: dict[str, Any],
    instance_dir: Path,
) -> dict[str, Any]:
    os.environ["EMAILCONNECTOR_INSTANCE_PATH"] = str(instance_dir)
    return {
        "TESTING": True,
        "DATABASE_URL": test_db.url,
        "REDIS_URL": redis_server.url,
        "LOGIN_MAX_FAILURES": 5,
        "SQLITE_STRICT_WRITES": True,  # a write path without write_transaction() fails its test
        **keys,
    }


@pytest.fixture(scope="session")
def migrated(base_config: dict[str, Any]) -> dict[str, Any]:
    """Create the schema once per session through the real migrations."""
    from flask_migrate import upgrade

    from webapp import create_app

    app = create_app(base_config)
    with app.app_context():
        upgrade()
    close_app(app)
    return base_config


def close_app(app: Flask) -> None:
    """Close the app's database pool and Redis client (open connections would be ResourceWarnings)."""
    from webapp.extensions import db

    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    redis = app.extensions.get("emailconnector.redis")
    if redis is not None:
        redis.close()


@pytest.fixture
def make_app(migrated: dict[str, Any]) -> Iterator[Callable[..., Flask]]:
    """Another app instance on the same database and Redis (as another process would be)."""
    from webapp import create_app

    made: list[Flask] = []

    def make(**over: Any) -> Flask:
        made.append(create_app({**migrated, **over}))
        return made[-1]

    yield make
    for other in made:
        close_app(other)


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in an app context of its own, as in production.

    The test itself holds an app context (to call services); without this, requests would share its
    ``g`` (and so flask-login's cached user) and its database session.
    """

    def open(self, *args: Any, **kwargs: Any) -> Any:
        from webapp.extensions import db

        with self.application.app_context():
            response = super().open(*args, **kwargs)
        db.session.rollback()  # the test's own session: read what the request committed
        return response


@pytest.fixture
def app(migrated: dict[str, Any], redis_server: test_redis.TestRedis) -> Iterator[Flask]:
    from webapp import create_app
    from webapp.extensions import db

    app = create_app(dict(migrated))
    app.test_client_class = IsolatedClient
    redis_server.flush()
    with app.app_context():
        yield app
        db.session.rollback()
        for table in reversed(db.metadata.sorted_tables):
            if table.name != "alembic_version":
                db.session.execute(delete(table))
        db.session.commit()
    close_app(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_user(app: Flask) -> Callable[..., Any]:
    from webapp.services.identity import users

    def make(username: str = "alice", password: str = TEST_PASSWORD, role: str = "user") -> Any:
        return users.create(username, password, role)

    return make


@pytest.fixture
def mail_user(dovecot: Dovecot) -> tuple[str, str]:
    """A mailbox at the test Dovecot: (username, password)."""
    dovecot.add_user("alice", "alice-mail-pw")
    return "alice", "alice-mail-pw"


@pytest.fixture
def make_account(
    app: Flask, dovecot: Dovecot, smtp: SmtpServer, pki: test_pki.Pki, mail_user: tuple[str, str]
) -> Callable[..., Any]:
    """Create an account against the test Dovecot and SMTP server (IMAPS + SMTP STARTTLS by default)."""
    from webapp.services.account import accounts
    from webapp.services.account.accounts import AccountSettings

    def make(**over: Any) -> Any:
        values: dict[str, Any] = {
            "name": "Work",
            "address": "alice@example.test",
            "username": mail_user[0],
            "password": mail_user[1],
            "incoming_protocol": "imap",
            "incoming_security": "tls",
            "incoming_host": "127.0.0.1",
            "incoming_port": dovecot.imaps_port,
            "outgoing_host": "127.0.0.1",
            "outgoing_port": smtp.port,
            "outgoing_security": "starttls",
            "tls_verify": "custom",
            "ca_cert_pem": pki.ca_pem.read_text(),
            "timeout": 5,
        }
        values.update(over)
        return accounts.create(AccountSettings(**values))

    return make


CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1) or match.group(2)


@pytest.fixture
def post_form(client: FlaskClient) -> Callable[..., Any]:
    """GET ``page`` for its CSRF token, then POST ``data`` to ``url`` (default: the page)."""

    def post(page: str, data: dict[str, Any], url: str | None = None, **kwargs: Any) -> Any:
        token = csrf_token(client.get(page).get_data(as_text=True))
        return client.post(url or page, data={"csrf_token": token, **data}, **kwargs)

    return post


@pytest.fixture
def login(post_form: Callable[..., Any]) -> Callable[..., Any]:
    def do(username: str, password: str = TEST_PASSWORD) -> Any:
        return post_form("/login", {"username": username, "password": password})

    return do


@pytest.fixture
def worker_env(migrated: dict[str, Any]) -> dict[str, str]:
    """The environment of another process (a worker, the CLI) on the test database and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAILCONNECTOR_")}
    env.update(
        DATABASE_URL=migrated["DATABASE_URL"],
        REDIS_URL=migrated["REDIS_URL"],
        EMAILCONNECTOR_SECRET_KEY=migrated["SECRET_KEY"],
        EMAILCONNECTOR_ENCRYPTION_KEYS=migrated["ENCRYPTION_KEYS"],
        EMAILCONNECTOR_INSTANCE_PATH=os.environ["EMAILCONNECTOR_INSTANCE_PATH"],
        EMAILCONNECTOR_SQLITE_STRICT_WRITES="true",
    )
    return env


@pytest.fixture
def worker(app: Flask, worker_env: dict[str, str], tmp_path: Path) -> Iterator[Any]:
    """A real ``email-connector worker`` process on the fetch and send queues, live when yielded."""
    import signal
    import subprocess
    import sys
    import time

    from webapp.services.receiving import fetchjobs

    exe = Path(sys.executable).with_name("email-connector")
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(exe), "worker", "--queue", "fetch", "--queue", "send"], env=worker_env, stdout=out, stderr=out
        )
    deadline = time.monotonic() + 60
    while not fetchjobs.live_worker() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.1)  # waiting for the process to register, not for a result
    assert fetchjobs.live_worker(), log.read_text()
    process.log = log  # type: ignore[attr-defined]
    yield process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def web_server(app: Flask, worker_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    """The real web server (``email-connector run``: waitress) on the test database and Redis."""
    import signal
    import subprocess
    import sys

    from tests.servers.ports import free_port, wait_for_port

    exe = Path(sys.executable).with_name("email-connector")
    port = free_port()
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(exe), "run", "--host", "127.0.0.1", "--port", str(port)], env=worker_env, stdout=out, stderr=out
        )
    try:
        wait_for_port(port, timeout=60)
    except RuntimeError:
        process.kill()
        raise AssertionError(log.read_text()) from None
    yield f"http://127.0.0.1:{port}"
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    assert "Traceback" not in log.read_text(), log.read_text()[-5000:]
