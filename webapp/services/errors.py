"""Errors the services raise, with a reason fit to show the user (never a secret).

ConnectorError
 ├── NotFound         no such user or account
 ├── Conflict         the name is taken, or the state does not allow it
 ├── Invalid          the input is wrong; the message names the field
 └── ConnectionFailed a server could not be used; ``kind`` says why (dns, refused, tls, auth, …)
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base of every error raised by the services and ``webapp.connector``."""


class NotFound(ConnectorError):
    pass


class Conflict(ConnectorError):
    pass


class Invalid(ConnectorError):
    pass


class ConnectionFailed(ConnectorError):
    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class PartlySent(ConnectionFailed):
    """The server took the message for some recipients and refused the others: it is in Sent (sending it
    again would reach the first ones twice)."""
