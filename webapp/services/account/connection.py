"""Test connection: log in to an account's servers — both at once — and say in plain words what failed.

Each result is recorded on the account (the overview shows an account whose last test failed) and every
failure goes to its Error logs, with the technical detail there. A server the account does not use
(send-only, receive-only) is not tested. Settings not saved yet (the setup wizard, the form's *Test*) are
tested the same way and nothing is recorded.
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
from webapp.services.account.accounts import AccountSettings

SERVERS = ("incoming", "outgoing")
LABELS = {"incoming": "Incoming server", "outgoing": "Outgoing server"}


@dataclass(frozen=True)
class CheckResult:
    server: str  # "incoming" | "outgoing"
    ok: bool
    message: str
    kind: str = ""  # dns, refused, timeout, tls, auth, … when it failed
    detail: str = ""  # for the Error logs
    used: bool = True  # False: the account has no such server (send-only, receive-only); not tested


@dataclass(frozen=True)
class ConnectionReport:
    incoming: CheckResult
    outgoing: CheckResult

    @property
    def ok(self) -> bool:
        """Did every server the account uses pass?"""
        return self.incoming.ok and self.outgoing.ok

    @property
    def checks(self) -> tuple[CheckResult, ...]:
        """The results of the servers the account uses."""
        return tuple(check for check in (self.incoming, self.outgoing) if check.used)


def protocol_label(account: EmailAccount, server: str) -> str:
    """What the page says while it tests: IMAP, POP3 or SMTP."""
    return account.incoming_protocol.upper() if server == "incoming" else "SMTP"


def used_servers(account: EmailAccount) -> tuple[str, ...]:
    """The servers the account has: both, or only the incoming or the outgoing one."""
    return tuple(server for server in SERVERS if _uses(account, server))


def _uses(account: EmailAccount, server: str) -> bool:
    return account.receives if server == "incoming" else account.sends


def _unused(server: str) -> CheckResult:
    other = "send-only" if server == "incoming" else "receive-only"
    return CheckResult(server, True, f"{LABELS[server]}: not used (the account is {other})", used=False)


def test_connection(account: EmailAccount) -> ConnectionReport:
    """Check the account's servers at the same time; each result is recorded and each failure logged."""
    report = _test(account)
    record(account, report)
    return report


def record(account: EmailAccount, report: ConnectionReport) -> None:
    """Record a test's results on the account (also a just-saved one, with the test its settings passed
    before Save: the page then says when it was last tested, not "never tested")."""
    for result in report.checks:
        _record(account.id, result)


def test_settings(settings: AccountSettings, stored: EmailAccount | None = None) -> ConnectionReport:
    """Check settings that are not saved (yet): nothing is recorded. Without a password in ``settings``
    the stored account's is used (the edit form leaves the password empty to keep it)."""
    return _test(accounts.unsaved(settings, stored))


def _test(account: EmailAccount) -> ConnectionReport:
    checks = {server: _checker(account, server) for server in SERVERS if _uses(account, server)}
    results = {server: _unused(server) for server in SERVERS if server not in checks}
    with ThreadPoolExecutor(2) as pool:  # network only in the threads: no database there
        futures = {server: pool.submit(_run, server, check) for server, check in checks.items()}
        results.update({server: future.result() for server, future in futures.items()})
    return ConnectionReport(results["incoming"], results["outgoing"])


def check(account: EmailAccount, server: str) -> CheckResult:
    """Check one server (``incoming`` or ``outgoing``): the page asks for both at once, each in its request."""
    if not _uses(account, server):
        return _unused(server)
    result = _run(server, _checker(account, server))
    _record(account.id, result)
    return result


def _checker(account: EmailAccount, server: str) -> Callable[[], str]:
    """The login check of one server, ready to run without the database (or raising its failure)."""
    if server not in SERVERS:
        raise ValueError(f"no server {server!r}")
    try:
        if server == "incoming":
            credentials = accounts.incoming_auth(account)
            endpoint = accounts.incoming_endpoint(account)
            login = imap.check_login if endpoint.protocol == "imap" else pop3.check_login
            return lambda: login(endpoint, credentials)
        smtp_credentials = accounts.outgoing_auth(account)
        outgoing = accounts.outgoing_endpoint(account)
        return lambda: smtp.check_login(outgoing, smtp_credentials)
    except AdapterError as exc:
        failure = exc

        def refuse() -> str:
            raise failure

        return refuse


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
