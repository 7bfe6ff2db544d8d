"""Database engine settings: SQLite in WAL mode with a busy timeout, foreign keys on, working savepoints."""

from __future__ import annotations

from typing import Any

from flask import Flask
from sqlalchemy import event

from webapp.extensions import db

SQLITE_BUSY_TIMEOUT_MS = 30_000


def init_app(app: Flask) -> None:
    if not app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        return
    with app.app_context():
        engine = db.engine
    event.listen(engine, "connect", _sqlite_pragmas)
    # pysqlite opens transactions lazily by itself, which breaks SAVEPOINT; let SQLAlchemy emit BEGIN.
    event.listen(engine, "begin", _sqlite_begin)


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
    connection.exec_driver_sql("BEGIN")
