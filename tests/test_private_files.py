"""The SQLite database, its -wal and -shm files and the instance folder are private to their owner."""

from __future__ import annotations

import stat
from pathlib import Path

from sqlalchemy import text

from tests.conftest import close_app


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_database_and_the_instance_folder_are_private(tmp_path: Path, keys, monkeypatch) -> None:
    from webapp import create_app
    from webapp.extensions import db

    instance = tmp_path / "instance"
    instance.mkdir(mode=0o755)
    instance.chmod(0o755)
    monkeypatch.setenv("EMAILCONNECTOR_INSTANCE_PATH", str(instance))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    database = instance / "email-connector.db"
    app = create_app({**keys, "DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": "redis://127.0.0.1:9/0"})
    try:
        with app.app_context():
            db.session.execute(text("CREATE TABLE t (x INTEGER)"))
            db.session.execute(text("INSERT INTO t VALUES (1)"))
            db.session.commit()
            wal, shm = Path(f"{database}-wal"), Path(f"{database}-shm")
            assert wal.exists() and shm.exists()
            assert (_mode(database), _mode(wal), _mode(shm), _mode(instance)) == (0o600, 0o600, 0o600, 0o700)
    finally:
        close_app(app)

    database.chmod(0o644)  # made readable by someone else: the next start closes it again
    close_app(create_app({**keys, "DATABASE_URL": f"sqlite:///{database}", "REDIS_URL": "redis://127.0.0.1:9/0"}))
    assert _mode(database) == 0o600
