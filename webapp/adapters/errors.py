"""The adapters' error tree, translated to user-facing errors by the services.

AdapterError            kind: an ErrorKind (why it failed, in one word)
 ├── TransientError     the network or the server may recover: retry later
 ├── PermanentError     retrying will not help (TLS certificate, protocol refusal)
 └── AuthError          the account needs its owner: wrong password or expired token
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    DNS = "dns"  # the host name does not resolve
    REFUSED = "refused"  # nothing listens on that port
    TIMEOUT = "timeout"
    RESET = "reset"  # the server closed the connection
    NETWORK = "network"  # any other socket failure
    TLS = "tls"  # certificate, or TLS spoken on one side only
    AUTH = "auth"  # login refused
    PROTOCOL = "protocol"  # the server refused or answered something unexpected
    FOLDER = "folder"  # an IMAP folder that cannot be opened
    RECIPIENTS = "recipients"  # the SMTP server refused recipients
    SMTPUTF8 = "smtputf8"  # non-ASCII addresses to a server without SMTPUTF8
    ABSENT = "absent"  # nothing there to ask (discovery: no such name, no such file)
    ADDRESS = "address"  # a destination address that is never asked (link-local, metadata, private)


class AdapterError(Exception):
    """A protocol operation failed; ``str(error)`` is a plain-words reason without secrets."""

    kind: ErrorKind = ErrorKind.PROTOCOL

    def __init__(self, message: str, *, kind: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = ErrorKind(kind)
        # The technical detail (library and server texts) for the Error logs; the message is for people.
        self.detail = detail


class TransientError(AdapterError):
    pass


class PermanentError(AdapterError):
    pass


class AuthError(AdapterError):
    kind = ErrorKind.AUTH
