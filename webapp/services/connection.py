"""Test connection: log in to both servers of an account and say in plain words what failed."""

from __future__ import annotations

from dataclasses import dataclass

from webapp.adapters import imap, pop3, smtp
from webapp.adapters.errors import AdapterError
from webapp.models import EmailAccount
from webapp.services import accounts, errorlog


@dataclass(frozen=True)
class CheckResult:
    server: str  # "incoming" | "outgoing"
    ok: bool
    message: str
    kind: str = ""  # dns, refused, timeout, tls, auth, … when it failed


@dataclass(frozen=True)
class ConnectionReport:
    incoming: CheckResult
    outgoing: CheckResult

    @property
    def ok(self) -> bool:
        return self.incoming.ok and self.outgoing.ok


def test_connection(account: EmailAccount) -> ConnectionReport:
    """Check both servers; each failure also goes to the account's Error logs."""
    try:
        creds = accounts.credentials(account)
    except AdapterError as exc:
        message = f"Login: {exc}"
        errorlog.record(account, "test connection", message, detail=f"kind={exc.kind}")
        failed = [CheckResult(server, False, message, exc.kind) for server in ("incoming", "outgoing")]
        return ConnectionReport(failed[0], failed[1])
    incoming = accounts.incoming_endpoint(account)
    checker = imap.check_login if incoming.protocol == "imap" else pop3.check_login
    results = []
    for server, check in (
        ("incoming", lambda: checker(incoming, creds)),
        (
            "outgoing",
            lambda: smtp.check_login(
                accounts.outgoing_endpoint(account), creds if account.smtp_auth == "login" else None
            ),
        ),
    ):
        try:
            results.append(CheckResult(server, True, check()))
        except AdapterError as exc:
            message = f"{server.capitalize()} server: {exc}"
            results.append(CheckResult(server, False, message, exc.kind))
            errorlog.record(account, "test connection", message, detail=f"kind={exc.kind}")
    return ConnectionReport(results[0], results[1])
