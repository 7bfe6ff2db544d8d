"""Health: are the database and Redis reachable?"""

from __future__ import annotations

from sqlalchemy import text

from webapp.extensions import db
from webapp.services.platform.redisconn import coordination


def check() -> dict[str, str]:
    """Return ``{"database": "ok"|reason, "redis": "ok"|reason}``."""
    status: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        status["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; say which kind
        db.session.rollback()
        status["database"] = f"unreachable ({exc.__class__.__name__})"
    try:
        coordination().ping()
        status["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        status["redis"] = f"unreachable ({exc.__class__.__name__})"
    return status
