"""The adapters' error tree, translated to user-facing errors by the services.

AdapterError            kind: dns | refused | timeout | reset | tls | auth | protocol | folder
 ├── TransientError     the network or the server may recover: retry later
 ├── PermanentError     retrying will not help (TLS certificate, protocol refusal)
 └── AuthError          the account needs its owner: wrong password or expired token
"""

from __future__ import annotations


class AdapterError(Exception):
    """A protocol operation failed; ``str(error)`` is a plain-words reason without secrets."""

    kind = "protocol"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind is not None:
            self.kind = kind


class TransientError(AdapterError):
    pass


class PermanentError(AdapterError):
    pass


class AuthError(AdapterError):
    kind = "auth"
