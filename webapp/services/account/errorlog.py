"""Recording failures in an account's Error logs."""

from __future__ import annotations

import logging

from sqlalchemy import select

from webapp.adapters.errors import AdapterError
from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount, ErrorLog

log = logging.getLogger(__name__)


@writes
def record(account: EmailAccount, operation: str, message: str, detail: str = "") -> None:
    """Add an entry to the account's error log and commit it (messages never carry secrets)."""
    db.session.add(ErrorLog(account_id=account.id, operation=operation, message=message, detail=detail))
    db.session.commit()
    # Info, not warning: the entry is the record (a command prints the error itself, once).
    log.info("account %s: %s failed: %s", account.name, operation, message)


def add(account_id: int, operation: str, message: str, detail: str = "") -> None:
    """Add an entry to the session without committing: it goes in with the caller's transaction."""
    db.session.add(ErrorLog(account_id=account_id, operation=operation, message=message, detail=detail))


def entries(account: EmailAccount, limit: int = 200) -> list[ErrorLog]:
    """Return the account's newest error log entries first."""
    query = (
        select(ErrorLog)
        .where(ErrorLog.account_id == account.id)
        .order_by(ErrorLog.created_at.desc(), ErrorLog.id.desc())
        .limit(limit)
    )
    return list(db.session.scalars(query))


def detail_of(exc: AdapterError) -> str:
    """The Error-log detail of an adapter failure: its kind and the technical text behind the message."""
    return f"kind={exc.kind}" + (f"; {exc.detail}" if exc.detail else "")
