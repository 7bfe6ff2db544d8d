"""The public Python interface of Email Connector, one function per Mendix action.

Call it inside an app context (``with app.app_context():``). Functions take model objects or ids and
raise a :class:`ConnectorError` subclass carrying the reason when they fail. The actions arrive with the
issues that build them (send, retrieve, templates, queue, subscriptions, autoconfig).
"""

from __future__ import annotations

from webapp.models import EmailAccount
from webapp.services import accounts as _accounts
from webapp.services import connection as _connection
from webapp.services.connection import ConnectionReport
from webapp.services.errors import Conflict, ConnectionFailed, ConnectorError, Invalid, NotFound

__all__ = [
    "Conflict",
    "ConnectionFailed",
    "ConnectionReport",
    "ConnectorError",
    "EmailAccount",
    "Invalid",
    "NotFound",
    "test_connection",
]


def test_connection(account: EmailAccount | int | str) -> ConnectionReport:
    """Log in to the account's incoming and outgoing servers and report each result."""
    if isinstance(account, int):
        account = _accounts.by_id(account)
    elif isinstance(account, str):
        account = _accounts.get(account)
    return _connection.test_connection(account)
