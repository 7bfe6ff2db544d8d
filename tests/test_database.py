"""write_transaction: writes take the lock up front, never leave a transaction open, and strict mode finds
writes that forgot it (SQLite); on PostgreSQL the same code commits and rolls back alike."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from webapp.database import UnsafeWrite, checked_writes, write_transaction, writes
from webapp.extensions import db
from webapp.models import AppSetting


@writes
def _add_without_commit(key: str) -> None:
    db.session.add(AppSetting(key=key, value="v"))


def test_a_block_that_does_not_commit_is_committed_and_leaves_no_transaction(app: Flask) -> None:
    db.session.scalar(select(AppSetting.key))  # a read transaction is open
    _add_without_commit("a")
    assert not db.session().in_transaction()
    db.session.rollback()
    assert db.session.get(AppSetting, "a") is not None


def test_a_block_that_raises_rolls_back(app: Flask) -> None:
    with pytest.raises(RuntimeError), write_transaction():
        db.session.add(AppSetting(key="b", value="v"))
        db.session.flush()
        raise RuntimeError("boom")
    assert not db.session().in_transaction()
    assert db.session.get(AppSetting, "b") is None


def test_unsaved_changes_before_the_block_are_refused_on_sqlite(app: Flask) -> None:
    db.session.scalar(select(AppSetting.key))
    db.session.add(AppSetting(key="c", value="v"))
    if db.engine.dialect.name == "sqlite":
        with pytest.raises(UnsafeWrite), write_transaction():
            pass
        db.session.rollback()
    else:  # PostgreSQL restarts nothing: the block simply goes on in the caller's transaction
        with write_transaction():
            pass
    assert (db.session.get(AppSetting, "c") is None) == (db.engine.dialect.name == "sqlite")


def test_strict_mode_refuses_a_write_after_a_read_outside_write_transaction(app: Flask) -> None:
    sqlite = db.engine.dialect.name == "sqlite"
    with checked_writes():
        db.session.scalar(select(AppSetting.key))
        db.session.add(AppSetting(key="d", value="v"))
        if sqlite:
            with pytest.raises(UnsafeWrite, match="write after a read"):
                db.session.flush()
        else:  # read committed: nothing to catch
            db.session.flush()
        db.session.rollback()
        with write_transaction():
            db.session.add(AppSetting(key="d", value="v"))
    assert db.session.get(AppSetting, "d") is not None
