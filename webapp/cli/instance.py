"""The instance a command runs against: found, checked, and with the embedded Redis while it runs.

The instance folder is ``EMAILCONNECTOR_INSTANCE_PATH``, else the project's ``instance/`` (never the
current directory). Before a command that loads the app runs:

- ``db upgrade`` alone creates things: the folder, the keys (on the embedded defaults) and the database.
  Every other command creates nothing; it says in one line what is missing and what to run.
- ``db …`` (other than ``upgrade``) needs the database to exist; every other command needs it at the
  migrations' head revision, and the keys.
- On the embedded defaults (no ``REDIS_URL``) every command but ``db …`` and ``up`` uses the embedded
  Redis: the one that answers on the instance's socket (``up``'s, or another command's), else one it
  starts and stops when it ends (see ``adapters.redisserver``). ``run``, ``up``, ``worker`` and
  ``scheduler`` check that a Redis named by ``REDIS_URL`` answers before they start.

A database or Redis that stops answering while a command runs, and any service error the command did
not handle, end the command with one line on stderr, never a traceback.
"""

from __future__ import annotations

import signal
import threading
from functools import partial
from pathlib import Path
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import ScriptInfo
from sqlalchemy.exc import InterfaceError, OperationalError

from webapp import config, create_app
from webapp.adapters import redisserver
from webapp.adapters.coordination import UNAVAILABLE
from webapp.cli.common import fail
from webapp.config import ConfigError
from webapp.services.errors import ConnectorError
from webapp.services.platform import readiness
from webapp.services.platform.redisconn import coordination

CREATES = ("db", "upgrade")
HELP_ONLY = "emailconnector.help_only"
# Long-running commands: a Redis named by REDIS_URL must answer before they start.
SERVICES = {"run", "up", "worker", "scheduler", "subscriber"}


class Cli(click.Group):
    """The root command: every subcommand gets an ``Instance``; unhandled service errors become one line."""

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra: Any
    ) -> click.Context:
        """Give the command's context an :class:`Instance` as its ``obj`` (unless one is given)."""
        extra.setdefault("obj", Instance())
        return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; Redis or the database not answering, or a service error, end it with one line."""
        try:
            return super().invoke(ctx)
        except UNAVAILABLE:
            fail(_explain(ctx, readiness.redis_problem) or "Redis does not answer")
        except (OperationalError, InterfaceError) as exc:
            fail(_explain(ctx, partial(readiness.database_problem, exc)) or f"the database failed: {exc.orig}")
        except ConnectorError as exc:
            fail(str(exc))


class Migrations(click.Group):
    """Flask-Migrate's ``db`` group, which loads the app before its subcommand runs.

    It notes when the subcommand will only print its help, so that ``prepare`` checks and creates nothing.
    """

    @classmethod
    def of(cls, group: click.Group) -> Migrations:
        """Flask-Migrate's ``group`` as a :class:`Migrations` group (the same commands, options and help)."""
        return cls(group.name, group.commands, callback=group.callback, params=group.params, help=group.help)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """Find the subcommand as click does, and note in ``ctx.meta`` whether it will only print its help."""
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[HELP_ONLY] = "--help" in rest
        return name, command, rest


class Instance(ScriptInfo):
    """The app a command runs against, loaded once and prepared for that command (``prepare``)."""

    def __init__(self, app: Flask | None = None) -> None:
        super().__init__(create_app=None, set_debug_flag=False, load_dotenv_defaults=False)
        self._given = app

    def load_app(self) -> Flask:
        """The app, built and prepared for this command (:func:`prepare`) on first use."""
        if self._loaded_app is None:
            self._loaded_app = prepare(click.get_current_context(), self._given)
        return self._loaded_app


def command_path(ctx: click.Context) -> tuple[str, ...]:
    """The names of the command being run below the root, e.g. ``("db", "upgrade")``."""
    names: list[str] = []
    node: click.Context | None = ctx
    while node is not None and node.parent is not None:
        names.append(node.info_name or "")
        node = node.parent
    names.reverse()
    if ctx.invoked_subcommand:  # a group loading the app for its subcommand (``db``)
        names.append(ctx.invoked_subcommand)
    return tuple(names)


def prepare(ctx: click.Context, given: Flask | None = None) -> Flask:
    """Build (or take) the app and make sure the instance has what the command needs; exit with one line if not."""
    path = command_path(ctx)
    helping = bool(ctx.meta.get(HELP_ONLY))
    folder = Path(config.default_instance_path()) if given is None else Path(given.instance_path)
    if folder.exists() and not folder.is_dir():
        fail(f"the instance folder {folder} is a file, not a folder: set EMAILCONNECTOR_INSTANCE_PATH to a folder")
    try:
        app = given if given is not None else create_app(create_instance=path == CREATES and not helping)
    except ConfigError as exc:
        fail(str(exc))
    if helping:
        return app
    if path == CREATES:
        Path(app.instance_path).mkdir(mode=0o700, parents=True, exist_ok=True)  # keys may come from the environment
        return app
    if path[:1] == ("db",):
        with app.app_context():
            _ready(lambda: readiness.check_database(schema=False))
        return app
    with app.app_context():
        _ready(readiness.check_database)
    missing = app.config.get("MISSING_KEY_FILES")
    if missing:
        fail(
            f"no key file {', '.join(missing)}: restore it from your backup (stored passwords need the old "
            "encryption keys), or let `email-connector db upgrade` generate new ones"
        )
    embedded = embedded_redis(app)
    if embedded is not None:
        if path != ("up",):  # up owns its Redis (see serve.up)
            socket_path, data_dir = embedded
            name = " ".join(("email-connector", *path))
            try:
                ctx.find_root().with_resource(redisserver.use(socket_path, data_dir, name, note))
            except RuntimeError as exc:
                fail(str(exc))
            except OSError as exc:  # the instance folder is not ours to write, say
                fail(f"cannot use the embedded Redis on {socket_path}: {exc.strerror}: {exc.filename}")
            # Killed by SIGTERM, a command that started the Redis would take it away from the others using
            # it: end like Ctrl-C instead, through the code that waits for them (the worker has its own handler).
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, _exit_on_sigterm)
    elif path[:1] and path[0] in SERVICES:
        with app.app_context():
            try:
                coordination().ping()
            except UNAVAILABLE:
                fail(readiness.redis_problem())
    return app


def embedded_redis(app: Flask) -> tuple[Path, Path] | None:
    """The embedded Redis's socket and data folder, when ``REDIS_URL`` is not set."""
    socket = app.config.get("EMBEDDED_REDIS_SOCKET")
    if not socket:
        return None
    return Path(socket), Path(socket).parent / "redis"


# Set by SIGTERM (see prepare). A loop that checks it ends even when the SystemExit the handler raised was
# lost: Python ignores an exception raised inside a finalizer (__del__) that the signal happened to
# interrupt (found by CI: the scheduler went on after "Exception ignored in: ZipFile.__del__ … SystemExit").
TERMINATING = threading.Event()


def _exit_on_sigterm(_signum: int, _frame: object) -> None:
    TERMINATING.set()
    raise SystemExit(128 + signal.SIGTERM)


def note(message: str) -> None:
    """Print a note on stderr, e.g. what the embedded Redis waits for (stdout stays the command's output)."""
    click.echo(message, err=True)


def _ready(check: Any) -> None:
    try:
        check()
    except readiness.NotReady as exc:
        fail(str(exc))


def _explain(ctx: click.Context, explain: Any) -> str | None:
    info = ctx.find_object(ScriptInfo)
    app = info._loaded_app if info is not None else None
    if app is None and current_app:
        app = current_app._get_current_object()  # type: ignore[attr-defined]
    if app is None:
        return None
    with app.app_context():
        message: str = explain()
    return message
