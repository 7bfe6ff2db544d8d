"""Database engine settings, and write transactions that cannot fail because someone else wrote.

SQLite runs in WAL mode with a busy timeout, foreign keys on and working savepoints. Its one pitfall: a
deferred transaction that has read and then writes fails at once ("database is locked",
SQLITE_BUSY_SNAPSHOT) when another connection committed in between — the busy timeout does not help,
because waiting cannot make an old snapshot current. So every unit of work that writes runs in
:func:`write_transaction`, which starts its transaction with ``BEGIN IMMEDIATE``: it takes the write lock
up front (waiting for it within the busy timeout) and reads the latest data. Reads stay deferred and never
block anyone. With ``SQLITE_STRICT_WRITES`` (the test suite sets it) a write after a read in a deferred
transaction raises, so a write path that forgot :func:`write_transaction` fails the tests instead of
failing under load. On PostgreSQL (read committed) :func:`write_transaction` changes nothing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from flask import Flask, g
from sqlalchemy import Connection, Engine, event

from webapp.extensions import db

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
_DML = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_immediate: ContextVar[bool] = ContextVar("sqlite_begin_immediate", default=False)
# Where SQLITE_STRICT_WRITES applies: requests, and commands (the worker's jobs run inside one). A test's
# own set-up code is left alone.
_checked: ContextVar[bool] = ContextVar("sqlite_strict_scope", default=False)
P = ParamSpec("P")
R = TypeVar("R")


class UnsafeWrite(RuntimeError):
    """A write after a read in a deferred SQLite transaction (see the module docstring)."""


def init_app(app: Flask) -> None:
    """On SQLite: a private database file, the pragmas, SQLAlchemy's own BEGIN and the write check per request."""
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with app.app_context():
        engine = db.engine
    if engine.url.database and engine.url.database != ":memory:":
        _private_files(Path(engine.url.database), Path(app.instance_path), app.config.get("CREATE_INSTANCE", True))
    strict = bool(app.config.get("SQLITE_STRICT_WRITES"))
    event.listen(engine, "connect", _sqlite_pragmas)
    # pysqlite opens transactions lazily by itself, which breaks SAVEPOINT; let SQLAlchemy emit BEGIN.
    event.listen(engine, "begin", _sqlite_begin)
    event.listen(engine, "before_cursor_execute", lambda *args: _check_write(*args, strict=strict))

    @app.before_request
    def _check_this_request() -> None:
        g.sqlite_checked = _checked.set(True)

    @app.teardown_request
    def _end_check(_exc: BaseException | None) -> None:
        token = g.pop("sqlite_checked", None)
        if token is not None:
            _checked.reset(token)


@contextmanager
def checked_writes() -> Iterator[None]:
    """Apply ``SQLITE_STRICT_WRITES`` inside this block (a command; requests get it by themselves)."""
    token = _checked.set(True)
    try:
        yield
    finally:
        _checked.reset(token)


@contextmanager
def write_transaction() -> Iterator[None]:
    """Run a unit of work that writes: on SQLite its transactions begin with ``BEGIN IMMEDIATE``. A read-only
    transaction still open is ended first (enter with nothing pending); the block commits when it ends, or
    rolls back when it raises (nested blocks leave that to the outermost)."""
    session = db.session()  # the scoped session's own Session
    outermost = not _immediate.get()
    if outermost and _is_sqlite() and session.in_transaction():
        if session.new or session.dirty or session.deleted:
            raise UnsafeWrite("write_transaction() entered with unsaved changes; start it before changing objects")
        connection = session.connection()
        if not connection.info.get("wrote"):
            session.commit()  # ends the read snapshot; nothing was written in it
    token = _immediate.set(True)
    try:
        yield
    except BaseException:
        if outermost and session.in_transaction():
            session.rollback()
        raise
    else:
        # Never leave a write transaction open (on SQLite it holds the write lock): what the block did not
        # commit itself is committed now.
        if outermost and session.in_transaction():
            session.commit()
    finally:
        _immediate.reset(token)


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection of its own in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed when the
    block ends: for a thread that writes beside the session (the outbox's writer)."""
    token = _immediate.set(True)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        _immediate.reset(token)


@contextmanager
def write_on(connection: Connection) -> Iterator[Connection]:
    """:func:`write_connection` on a connection the caller holds (a writer thread's own, kept for many
    short transactions: no pool checkout per commit)."""
    token = _immediate.set(True)
    try:
        with connection.begin():
            yield connection
    finally:
        _immediate.reset(token)


def writes(function: Callable[P, R]) -> Callable[P, R]:
    """Decorate a service function that writes: it runs in :func:`write_transaction`."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with write_transaction():
            return function(*args, **kwargs)

    return wrapper


def _is_sqlite() -> bool:
    return db.session.get_bind().dialect.name == "sqlite"


def _private_files(database: Path, instance: Path, create: bool) -> None:
    """The database holds everything the app knows: only its owner may read it (0600; the instance folder
    0700). SQLite creates the -wal and -shm files with the database's own permissions. Without ``create``
    (the command line, but for ``db upgrade``) a missing database is left missing."""
    if not create and not database.exists():
        return
    folder = database.parent
    if not folder.exists():
        folder.mkdir(mode=0o700, parents=True)
    try:
        if folder.resolve() == instance.resolve() and folder.stat().st_mode & 0o077:
            folder.chmod(0o700)
        os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o600))
        for path in (database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")):
            if path.exists() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
    except PermissionError:
        log.warning("cannot make %s private to its owner; check its permissions", database)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # A web process and workers write at once: WAL lets readers go on, the busy timeout makes writers wait.
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode = WAL")
    cursor.execute("PRAGMA synchronous = NORMAL")
    cursor.execute("PRAGMA foreign_keys = ON")
    cursor.close()
    dbapi_connection.isolation_level = None


def _sqlite_begin(connection: Any) -> None:
    immediate = _immediate.get()
    connection.info.update(immediate=immediate, read=False, wrote=False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _check_write(connection: Any, _cursor: Any, statement: str, *_rest: Any, strict: bool) -> None:
    if not connection.in_transaction() or connection.info.get("immediate"):
        return
    verb = statement.lstrip()[:7].upper()
    if verb.startswith(_DML):
        if connection.info.get("read") and not connection.info.get("wrote"):
            message = f"a write after a read in a deferred SQLite transaction: {statement[:80]!r}"
            if strict and _checked.get():
                raise UnsafeWrite(message + " (use webapp.database.write_transaction)")
            log.warning("%s", message)
        connection.info["wrote"] = True
    elif verb.startswith(("SELECT", "WITH")):
        connection.info["read"] = True
