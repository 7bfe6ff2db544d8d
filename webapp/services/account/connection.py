"""Test connection: log in to an account's servers — both at once — and say in plain words what failed.

Each result is recorded on the account (the overview shows an account whose last test failed) and every
failure goes to its Error logs, with the technical detail there.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from webapp.adapters.errors import AdapterError
from webapp.adapters.mail import imap, pop3, smtp
from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount
from webapp.models.base import utcnow
from webapp.services.account import accounts, errorlog

SERVERS = ("incoming", "outgoing")
LABELS = {"incoming": "Incoming server", "outgoing": "Outgoing server"}


@dataclass(frozen=True)
class CheckResult:
    server: str  # "incoming" | "outgoing"
    ok: bool
    message: str
    kind: str = ""  # dns, refused, timeout, tls, auth, … when it failed
    detail: str = ""  # for the Error logs


@dataclass(frozen=True)
class ConnectionReport:
    incoming: CheckResult
    outgoing: CheckResult

    @property
    def ok(self) -> bool:
        """Did both servers pass?"""
        return self.incoming.ok and self.outgoing.ok


def protocol_label(account: EmailAccount, server: str) -> str:
    """What the page says while it tests: IMAP, POP3 or SMTP."""
    return account.incoming_protocol.upper() if server == "incoming" else "SMTP"


def test_connection(account: EmailAccount) -> ConnectionReport:
    """Check both servers at the same time; each result is recorded and each failure logged."""
    checks = {server: _checker(account, server) for server in SERVERS}
    with ThreadPoolExecutor(len(checks)) as pool:  # network only in the threads: no database there
        futures = {server: pool.submit(_run, server, check) for server, check in checks.items()}
        results = {server: future.result() for server, future in futures.items()}
    for result in results.values():
        _record(account.id, result)
    return ConnectionReport(results["incoming"], results["outgoing"])


def check(account: EmailAccount, server: str) -> CheckResult:
    """Check one server (``incoming`` or ``outgoing``): the page asks for both at once, each in its request."""
    result = _run(server, _checker(account, server))
    _record(account.id, result)
    return result


def _checker(account: EmailAccount, server: str) -> Callable[[], str]:
    """The login check of one server, ready to run without the database (or raising its failure)."""
    if server not in SERVERS:
        raise ValueError(f"no server {server!r}")
    try:
        credentials = accounts.auth(account)
    except AdapterError as exc:
        failure = exc

        def refuse() -> str:
            raise failure

        return refuse
    if server == "incoming":
        endpoint = accounts.incoming_endpoint(account)
        login = imap.check_login if endpoint.protocol == "imap" else pop3.check_login
        return lambda: login(endpoint, credentials)
    outgoing = accounts.outgoing_endpoint(account)
    smtp_credentials = credentials if account.smtp_auth == "login" else None
    return lambda: smtp.check_login(outgoing, smtp_credentials)


def _run(server: str, login: Callable[[], str]) -> CheckResult:
    try:
        return CheckResult(server, True, login())
    except AdapterError as exc:
        return CheckResult(server, False, f"{LABELS[server]}: {exc}", exc.kind, errorlog.detail_of(exc))


@writes
def _record(account_id: int, result: CheckResult) -> None:
    account = db.session.get(EmailAccount, account_id)
    if account is None:
        return
    account.last_test_at = utcnow()
    setattr(account, f"last_test_{result.server}_ok", result.ok)
    db.session.commit()
    if not result.ok:
        errorlog.record(account, "test connection", result.message, detail=result.detail)
