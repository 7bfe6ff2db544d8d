"""The test database: ``DATABASE_URL`` (a throw-away PostgreSQL database of our own) or SQLite."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url


@dataclass
class TestDatabase:
    url: str
    admin_url: str | None = None
    name: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    def drop(self) -> None:
        if self.admin_url and self.name:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def create(folder: Path) -> TestDatabase:
    base = os.environ.get("DATABASE_URL")
    if not base:
        return TestDatabase(f"sqlite:///{folder / 'test.db'}")
    url = make_url(base.replace("postgres://", "postgresql://", 1))
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"ec_test_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    own = url.set(drivername="postgresql", database=name).render_as_string(hide_password=False)
    return TestDatabase(own, admin, name)
