"""Is the installation ready for a command: a database with the current schema, reachable servers?

Each problem is one sentence that says what to run, start or set; the command line prints it as is.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import current_app
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from webapp.extensions import db
from webapp.services.errors import ConnectorError

SET_UP = "run `email-connector db upgrade` or `make run` first"


class NotReady(ConnectorError):
    """Something the command needs is missing or does not answer; the message says what to do."""


def check_database(*, schema: bool = True) -> None:
    """Raise NotReady unless the database exists and (with ``schema``) has the migrations' schema.

    A missing SQLite file is never created here: only ``db upgrade`` creates the database.
    """
    url = db.engine.url
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise NotReady(f"no database at {path}: {SET_UP}")
    if not schema:
        return
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except DBAPIError as exc:
        raise NotReady(database_problem(exc)) from None
    if not current:
        raise NotReady(f"no tables in the database at {describe(url)}: {SET_UP}")
    script = ScriptDirectory(current_app.extensions["migrate"].directory)
    heads = set(script.get_heads())
    if current == heads:
        return
    known = {revision.revision for revision in script.walk_revisions()}
    if current - known:
        raise NotReady(
            f"the database at {describe(url)} has revision {', '.join(sorted(current - known))}, "
            "which this version does not know: it was upgraded by a newer version"
        )
    raise NotReady(
        f"the database at {describe(url)} is not up to date (revision {', '.join(sorted(current))}, "
        f"this version needs {', '.join(sorted(heads))}): run `email-connector db upgrade`"
    )


def sqlite_path(url: URL) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory ones)."""
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def describe(url: URL) -> str:
    """The database for people: the SQLite file, or PostgreSQL's host, port and name (never a password)."""
    path = sqlite_path(url)
    if path is not None:
        return str(path)
    return f"{url.get_backend_name()}://{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def database_problem(exc: DBAPIError) -> str:
    """One line for a failed database call: who did not answer and what to fix, else the driver's reason."""
    url = db.engine.url
    reason = " ".join(str(exc.orig).split("\n", 1)[0].split())
    if url.get_backend_name() == "postgresql" and (exc.connection_invalidated or "connection" in reason.lower()):
        detail = reason.rsplit(": ", 1)[-1]
        return f"PostgreSQL at {describe(url)} does not answer ({detail}): start it or fix DATABASE_URL"
    return f"the database at {describe(url)} failed: {reason}"


def redis_problem() -> str:
    """One line for a Redis that does not answer."""
    socket = current_app.config.get("EMBEDDED_REDIS_SOCKET")
    if socket:
        return f"the embedded Redis on {socket} does not answer: run the command again, or `make run`"
    parts = urlsplit(current_app.config["REDIS_URL"])
    if parts.scheme == "unix":
        shown = f"unix://{parts.path}"
    else:  # without the password
        netloc = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
        shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return f"Redis at {shown} does not answer: start it or fix REDIS_URL"
