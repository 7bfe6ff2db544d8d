"""The installed ``email-connector`` on its own, as a real process: every command of the command tree
from a fresh instance folder with nothing running — no traceback, exit 0 or one line that says what to
do, nothing created but by ``db upgrade``, and no redis-server left behind.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

from tests.servers import messages as generated
from tests.servers.dnsserver import DnsServer
from tests.servers.dovecot import Dovecot
from tests.servers.pki import Pki
from tests.servers.ports import free_port, refused_port
from tests.servers.smtp import SmtpServer
from tests.servers.webhookreceiver import Receiver
from webapp.adapters import redisserver
from webapp.cli import cli
from webapp.config import PROJECT_ROOT

EXE = Path(sys.executable).with_name("email-connector")
SET_UP = "run `email-connector db upgrade` or `make run` first"


@dataclass(frozen=True)
class Step:
    """One run of a command: its arguments, the exit code expected once the instance is set up."""

    args: tuple[str, ...]
    code: int = 0
    stdin: str = ""
    serves: str | None = None  # runs until stopped: SIGTERM once stderr shows this
    says: str | None = None  # expected in stdout or stderr (after `db upgrade`)


@dataclass
class Place:
    """A fresh instance folder and a working directory outside the project, on the embedded defaults."""

    root: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def instance(self) -> Path:
        return self.root / "i"

    @property
    def cwd(self) -> Path:
        return self.root / "cwd"

    @property
    def socket(self) -> Path:
        return self.instance / "redis.sock"


@dataclass
class Ran:
    step: Step
    code: int
    stdout: str
    stderr: str


def command_tree(group: click.Group = cli, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command below ``group``, as the names that run it."""
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += command_tree(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


def command_of(args: tuple[str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    command: click.Command = cli
    for arg in args:
        if not isinstance(command, click.Group) or arg not in command.commands:
            break
        names.append(arg)
        command = command.commands[arg]
    return tuple(names)


def scenario(dovecot: Dovecot, smtp: SmtpServer, ca: Path, hooks: Receiver) -> list[Step]:
    """Every command, in an order that works once ``db upgrade`` ran. A new command must be added here."""
    password = "root password 1\n"
    account = (
        "accounts", "add", "Work", "--address", "alice@example.test", "--username", "alice", "--password-stdin",
        "--incoming", f"imaps://127.0.0.1:{dovecot.imaps_port}/INBOX",
        "--outgoing", f"smtp+starttls://127.0.0.1:{smtp.port}", "--ca-file", str(ca), "--timeout", "5",
    )  # fmt: skip
    return [
        Step(("keys", "generate")),
        Step(("db", "upgrade"), says="Back this file up"),
        Step(("db", "current"), says="0"),
        Step(("db", "heads")),
        Step(("db", "history")),
        Step(("db", "show")),
        Step(("db", "branches")),
        Step(("db", "check"), says="No new upgrade operations detected"),
        Step(("db", "stamp", "head")),
        Step(("db", "list-templates")),
        # Tools for writing migrations: they write into the project's migrations/ or open an editor.
        Step(("db", "init", "--help")),
        Step(("db", "revision", "--help")),
        Step(("db", "migrate", "--help")),
        Step(("db", "edit", "--help")),
        Step(("db", "merge", "--help")),
        Step(("setup-token",)),
        Step(("users", "create-admin", "root", "--password-stdin"), stdin=password),
        Step(("setup-token",), code=1, says="error: setup is done: a user exists"),
        Step(("users", "add", "bob", "--password-stdin"), stdin="bob password 1\n"),
        Step(("users", "set-password", "bob", "--password-stdin"), stdin="bob password 2\n"),
        Step(("users", "list", "--json"), says='"username": "bob"'),
        Step(("autoconfig", "someone@gmail.com"), says="imap\timap.gmail.com:993\ttls\tlogin someone@gmail.com"),
        Step(
            ("autoconfig", "someone@gmail.com"),
            says="accounts add NAME --address someone@gmail.com --incoming imaps://imap.gmail.com:993/INBOX",
        ),
        Step(("autoconfig", "jo@localhost"), code=1, says="a one-word domain such as localhost publishes no mail"),
        Step(
            ("oauth", "add", "Contoso", "--flow", "client_credentials", "--client-id", "a1", "--client-secret-stdin"),
            stdin="app secret 1\n",
            says="OAuth provider Contoso added",
        ),
        Step(("oauth", "list", "--json"), says='"name": "Contoso"'),
        Step(("oauth", "remove", "Contoso"), says="OAuth provider Contoso removed"),
        Step(("oauth", "remove", "Contoso"), code=1, says="error: no OAuth provider named 'Contoso'"),
        Step(("autoconfig", "someone@unknown.test", "--json"), code=1, says="error: no configuration found"),
        Step(account, stdin="alice-mail-pw\n", says="account Work added"),
        Step(("accounts", "update", "Work", "--count", "10")),
        Step(("accounts", "list", "--json"), says='"count": 10'),
        Step(("accounts", "test", "Work"), says="IMAP login OK"),
        Step(("users", "grant", "bob", "Work", "--read", "--send")),
        Step(("folders", "Work", "--json"), says='"name": "INBOX"'),
        Step(("fetch", "Work", "--inline", "--json"), says='"stored": 3'),
        Step(("fetch", "runs", "Work", "--json"), says='"status": "finished"'),
        Step(("fetch", "now", "Work", "--inline"), says="stored 0, skipped 3"),
        Step(("messages", "list", "--account", "Work", "--json"), says="Text message 2"),
        Step(
            ("send", "--account", "Work", "--to", "alice@example.test", "--subject", "Hi", "--body", "Hello", "--json"),
            says='"status": "SENT"',
        ),
        Step(
            (
                "send",
                "--account",
                "Work",
                "--to",
                "bob@example.test",
                "--subject",
                "Queued",
                "--body",
                "Hi",
                "--queue",
                "--json",
            ),
            says='"status": "QUEUED"',
        ),
        Step(("outbox", "list", "--account", "Work", "--json"), says='"subject": "Queued"'),
        Step(("send-queued", "--json"), says='"sent": 1'),
        Step(("outbox", "list", "--account", "Work", "--status", "sent"), says="Queued"),
        Step(("outbox", "retry", "--all-failed"), says="queued again: 0 message(s)"),
        Step(("outbox", "cancel", "999999"), code=1, says="error: no outgoing message 999999"),
        Step(("fetch", "Work"), says="queued a fetch of Work (job "),
        Step(("fetch", "Work", "--wait"), code=1, says="error: no worker is listening on the fetch queue"),
        # The queued job waited in the embedded Redis's saved data; this worker runs it and stops.
        Step(("worker", "--burst"), says="Job OK"),
        Step(("messages", "list", "--account", "Work", "--folder", "INBOX", "--json"), says='"subject": "Hi"'),
        Step(("fetch-due",)),
        Step(
            ("webhooks", "add", "Work", hooks.url("/in"), "--events", "complete", "--secret-stdin", "--json"),
            stdin="a-secret-of-our-own-1234\n",
            says='"id": 1',
        ),
        Step(("webhooks", "list", "--json"), says=hooks.url("/in")),
        Step(("webhooks", "test", "1"), says="test event delivered"),
        Step(("webhooks", "deliveries", "1"), says="test"),
        Step(("webhooks", "redeliver", "1"), says="redelivery of 1 delivered"),
        Step(("webhooks", "remove", "1"), says="webhook 1 removed"),
        Step(("subscriptions", "start", "Work"), says="subscribed: Work"),
        Step(("subscriptions", "list", "--json"), says='"state": "WAITING"'),
        Step(("subscriber",), serves="subscriber: listening"),
        Step(("subscriptions", "stop", "Work"), says="unsubscribed: Work"),
        Step(("keys", "rotate"), says="1 secret(s) re-encrypted"),
        Step(("db", "downgrade")),
        Step(("accounts", "list"), code=1, says="is not up to date (revision "),
        Step(("db", "upgrade")),
        Step(("run", "--port", str(free_port())), serves="Serving on"),
        Step(("scheduler", "--interval", "5"), serves="scheduler: every"),
        Step(("up", "--port", str(free_port())), serves="Email Connector: http"),
        Step(("accounts", "remove", "Work", "--yes"), says="account Work removed"),
        Step(("blobs", "gc", "--dry-run", "--json")),
    ]


@pytest.fixture
def place(dns_server: DnsServer) -> Iterator[Place]:
    root = Path(tempfile.mkdtemp(prefix="ec-cli-"))  # short: the Redis socket path has at most 107 bytes
    (root / "cwd").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAILCONNECTOR_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    env["EMAILCONNECTOR_INSTANCE_PATH"] = str(root / "i")
    env["EMAILCONNECTOR_SQLITE_STRICT_WRITES"] = "true"  # as in the suite: a write path without a write lock fails
    env["EMAILCONNECTOR_AUTOCONFIG_DNS_SERVERS"] = dns_server.address  # discovery asks the kit's DNS only
    yield Place(root, env)
    for pid in redis_servers(root):  # never leave one behind, even when the test failed
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def ca_file(pki: Pki, place: Place) -> Path:
    path = place.root / "ca.pem"
    path.write_text(pki.ca_pem.read_text())
    return path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def steps(
    dovecot: Dovecot, smtp: SmtpServer, mail_user: tuple[str, str], ca_file: Path, receiver: Receiver
) -> list[Step]:
    for raw in (generated.make(0, "attachment"), generated.make(1, "non_ascii"), generated.make(2, "text")):
        dovecot.deliver("alice", raw)
    return scenario(dovecot, smtp, ca_file, receiver)


def redis_servers(folder: Path) -> list[int]:
    """Running redis-server processes whose socket lies under ``folder``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "redis-server" in cmdline and str(folder) in cmdline:
            found.append(int(entry.name))
    return found


def run(place: Place, step: Step, env: dict[str, str] | None = None) -> Ran:
    env = env or place.env
    if step.serves is None:
        done = subprocess.run(
            [str(EXE), *step.args], input=step.stdin, capture_output=True, text=True, env=env, cwd=place.cwd,
            timeout=180,
        )  # fmt: skip
        return Ran(step, done.returncode, done.stdout, done.stderr)
    logs = Path(tempfile.mkdtemp(dir=place.root, prefix="-".join(command_of(step.args)) + "-"))
    out, err = logs / "out", logs / "err"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen([str(EXE), *step.args], stdout=stdout, stderr=stderr, env=env, cwd=place.cwd)
    try:
        deadline = time.monotonic() + 90
        while step.serves not in err.read_text() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)  # waiting for a process to come up, not for a result
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=90)
    return Ran(step, process.returncode, out.read_text(), err.read_text())


def assert_clean(ran: Ran) -> None:
    """No traceback; exit 0, or a failure told in exactly one line."""
    shown = f"{ran.step.args}: exit {ran.code}\nstdout: {ran.stdout}\nstderr: {ran.stderr}"
    assert "Traceback" not in ran.stderr and "Traceback" not in ran.stdout, shown
    stopped = ran.step.serves and ran.code in (-signal.SIGTERM, 128 + signal.SIGTERM)
    if ran.code != 0 and not stopped:
        lines = [line for line in ran.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: "), shown


def first_steps(steps: list[Step]) -> dict[tuple[str, ...], Step]:
    """The first step of every command; fails when a command of the tree is missing from the scenario."""
    first: dict[tuple[str, ...], Step] = {}
    for step in steps:
        first.setdefault(command_of(step.args), step)
    missing = sorted(set(command_tree()) - set(first))
    assert not missing, f"add the new command(s) {missing} to scenario() in {__file__}"
    return first


def test_every_command_on_a_fresh_instance_creates_nothing_and_says_what_to_run(
    place: Place, steps: list[Step]
) -> None:
    """Read-only and writing commands alike: one line naming the missing database (issues 9 and 10)."""
    first = first_steps(steps)
    first.pop(("db", "upgrade"))  # the one command that creates the instance: see the next test
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda step: run(place, step), first.values()))
    no_database = f"error: no database at {place.instance / 'email-connector.db'}: {SET_UP}"
    for ran in results:
        assert_clean(ran)
        if "--help" in ran.step.args or ran.step.args == ("keys", "generate"):
            assert ran.code == 0, ran
        else:
            assert (ran.code, ran.stderr.strip()) == (1, no_database), ran
    assert not place.instance.exists()  # no keys, no database, no folder
    assert list(place.cwd.iterdir()) == []
    assert redis_servers(place.root) == []


def test_every_command_after_db_upgrade_works_on_the_embedded_defaults(place: Place, steps: list[Step]) -> None:
    """Nothing else running: each command that needs Redis starts the embedded one and stops it again."""
    first_steps(steps)
    for step in steps:
        ran = run(place, step)
        assert_clean(ran)
        if not step.serves:
            assert ran.code == step.code, ran
        if step.says:
            assert step.says in ran.stdout + ran.stderr, ran
        if step.args[:2] == ("fetch", "Work") and "--inline" in step.args:
            assert json.loads(ran.stdout) == {
                "stored": 3,
                "skipped": 0,
                "quarantined": 0,
                "failed": 0,
                "total_on_server": 3,
            }
        if step.args[0] == "send":
            sent = json.loads(ran.stdout)
            assert isinstance(sent["id"], int) and "@" in sent["message_id"]
        assert redis_servers(place.root) == [], f"{step.args} left a redis-server behind"
    assert not redisserver.answers(place.socket)
    assert list(place.cwd.iterdir()) == []


def test_every_command_with_postgresql_down_says_so_in_one_line(place: Place, steps: list[Step]) -> None:
    closed = refused_port()
    env = {
        **place.env,
        "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed}/postgres",
        "EMAILCONNECTOR_SECRET_KEY": "s" * 32,
        "EMAILCONNECTOR_ENCRYPTION_KEYS": "yYY2mVHrPVJ0S0pCqA4v6U8xkZ2CI7lqSMyX4pY7ZUc=",
    }
    first = first_steps(steps)
    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda step: run(place, step, env), first.values()))
    down = (
        f"error: PostgreSQL at postgresql://127.0.0.1:{closed}/postgres does not answer (Connection refused): "
        "start it or fix DATABASE_URL"
    )
    for ran in results:
        assert_clean(ran)
        if "--help" in ran.step.args or ran.step.args == ("keys", "generate"):
            assert ran.code == 0, ran
        elif ran.code or command_of(ran.step.args)[:1] != ("db",):  # db heads, history…: the scripts only
            assert (ran.code, ran.stderr.strip()) == (1, down), ran
    assert redis_servers(place.root) == []


def test_every_command_with_redis_down_says_so_in_one_line(place: Place, steps: list[Step]) -> None:
    closed = refused_port()
    env = {
        **place.env,
        "REDIS_URL": f"redis://:secret@127.0.0.1:{closed}/0",
        "EMAILCONNECTOR_SECRET_KEY": "s" * 32,
        "EMAILCONNECTOR_ENCRYPTION_KEYS": "yYY2mVHrPVJ0S0pCqA4v6U8xkZ2CI7lqSMyX4pY7ZUc=",
    }
    down = f"error: Redis at redis://127.0.0.1:{closed}/0 does not answer: start it or fix REDIS_URL"
    first_steps(steps)
    needs_redis = {("fetch",), ("worker",), ("run",), ("up",), ("scheduler",), ("subscriber",)}
    for step in steps:
        if command_of(step.args)[:1] == ("db",) and step.args != ("db", "upgrade"):
            continue  # migrations never touch Redis (and the downgrade would only hide the rest)
        ran = run(place, step, env)
        assert_clean(ran)
        if command_of(step.args) in needs_redis and "--inline" not in step.args:
            assert (ran.code, ran.stderr.strip()) == (1, down), ran
        assert "secret" not in ran.stderr
    assert redis_servers(place.root) == []


def test_the_instance_is_the_projects_own_never_the_current_directory(tmp_path: Path) -> None:
    """Without EMAILCONNECTOR_INSTANCE_PATH, from elsewhere: the project's instance/, and nothing written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAILCONNECTOR_")}
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    instance = PROJECT_ROOT / "instance"
    before = sorted(p.name for p in instance.iterdir()) if instance.exists() else None
    done = subprocess.run(
        [str(EXE), "db", "current"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert "Traceback" not in done.stderr
    if done.returncode:  # a fresh clone: no database yet
        assert done.stderr.strip() == f"error: no database at {instance / 'email-connector.db'}: {SET_UP}"
    assert list(tmp_path.iterdir()) == []
    assert (sorted(p.name for p in instance.iterdir()) if instance.exists() else None) == before


def test_help_and_version_are_ours_and_load_nothing(place: Place) -> None:
    """Flask's own options (--app, --debug, --env-file, its --version) are not offered."""
    top = run(place, Step(("--help",)))
    assert top.code == 0
    for flask_option in ("--env-file", "--app", "--debug", "Flask"):
        assert flask_option not in top.stdout
    from importlib.metadata import version

    shown = run(place, Step(("--version",)))
    assert (shown.code, shown.stdout.strip()) == (0, f"email-connector {version('email-connector')}")
    typo = run(place, Step(("acounts", "list")))
    assert typo.code == 2 and "No such command 'acounts'" in typo.stderr and "Traceback" not in typo.stderr
    assert not place.instance.exists()


def test_commands_started_at_once_share_one_embedded_redis_and_stop_it(place: Place) -> None:
    """Four commands that all find no Redis: one starts it, the others use it, the last one out ends it."""
    assert run(place, Step(("db", "upgrade"))).code == 0
    processes = [
        subprocess.Popen([str(EXE), "fetch-due"], env=place.env, cwd=place.cwd, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0 and "Traceback" not in stderr, stderr
    assert redis_servers(place.root) == []
    assert not redisserver.answers(place.socket)


@pytest.mark.parametrize(
    ("args", "ready", "code"),
    [(("worker",), "Listening on", 0), (("scheduler", "--interval", "5"), "scheduler: every", 128 + signal.SIGTERM)],
)
def test_a_command_that_started_redis_waits_for_the_others_then_stops_it(
    place: Place, args: tuple[str, ...], ready: str, code: int
) -> None:
    """The owner is asked to stop (SIGTERM) while another process still uses its Redis: it waits, then stops it."""
    assert run(place, Step(("db", "upgrade"))).code == 0
    log = place.root / "owner.log"
    with log.open("w") as out:
        worker = subprocess.Popen([str(EXE), *args], env=place.env, cwd=place.cwd, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 60
        while ready not in log.read_text():
            assert time.monotonic() < deadline and worker.poll() is None, log.read_text()
            time.sleep(0.1)  # waiting for the process to come up
        assert redisserver.owner_of(place.socket) == (worker.pid, f"email-connector {args[0]}")
        with redisserver.use(place.socket, place.instance / "redis", "test", lambda _m: None) as lease:
            assert lease.process is None and redisserver.answers(place.socket)
            worker.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 60
            while "waiting for the other commands that use the embedded Redis" not in log.read_text():
                assert time.monotonic() < deadline and worker.poll() is None, log.read_text()
                time.sleep(0.1)
            assert redisserver.answers(place.socket)  # still serving this user
        assert worker.wait(timeout=60) == code, log.read_text()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert "Traceback" not in log.read_text()
    assert not redisserver.answers(place.socket)
    assert redis_servers(place.root) == []
