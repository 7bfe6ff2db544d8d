"""How each account is doing, for the overview and the account page: unread mail, the last fetch, the next
scheduled one, its subscription to incoming mail, and whether the last fetch, the connection test or the
subscription failed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage, FetchRun, Subscription
from webapp.models.fetchrun import RunStatus
from webapp.models.message import MessageStatus
from webapp.models.subscription import GIVEN_UP, SubscriptionState
from webapp.services import schedule
from webapp.services.outgoing import outbox
from webapp.services.receiving import fetchjobs


@dataclass(frozen=True)
class AccountStatus:
    unread: int
    last_run: FetchRun | None
    next_fetch_at: datetime | None  # None: not fetched on a schedule
    running_job: str | None  # the fetch job queued or running now
    test_failed: bool  # the last Test connection failed for a server
    queued: int = 0  # outgoing mail waiting (queued or being sent)
    failed: int = 0  # outgoing mail that failed
    subscription: Subscription | None = None  # active only (a stopped one is not shown)

    @property
    def problem(self) -> str | None:
        """Why the account needs attention, in a few words; None when it does not."""
        if self.subscription is not None and self.subscription.state in GIVEN_UP:
            return "the subscription to incoming mail stopped"
        if self.subscription is not None and self.subscription.state == SubscriptionState.CONNECTIONTOSERVERLOST:
            return "the subscription lost its connection (reconnecting)"
        if self.last_run is not None and self.last_run.status == RunStatus.FAILED:
            return "the last fetch failed"
        if self.test_failed:
            return "the last connection test failed"
        return None


def of_accounts(accounts: Sequence[EmailAccount]) -> dict[int, AccountStatus]:
    """The status of each account, by id, in a few queries whatever their number."""
    ids = [account.id for account in accounts]
    if not ids:
        return {}
    unread = dict(
        db.session.execute(
            select(EmailMessage.account_id, func.count(EmailMessage.id))
            .where(
                EmailMessage.account_id.in_(ids),
                EmailMessage.seen.is_(False),
                EmailMessage.status == MessageStatus.RECEIVED,
            )
            .group_by(EmailMessage.account_id)
        ).all()
    )
    newest = select(func.max(FetchRun.id)).where(FetchRun.account_id.in_(ids)).group_by(FetchRun.account_id)
    runs = {run.account_id: run for run in db.session.scalars(select(FetchRun).where(FetchRun.id.in_(newest)))}
    outgoing = outbox.counts(ids)
    subscribed = {
        s.account_id: s
        for s in db.session.scalars(
            select(Subscription).where(Subscription.account_id.in_(ids), Subscription.active.is_(True))
        )
    }
    return {
        account.id: AccountStatus(
            unread=int(unread.get(account.id, 0)),
            last_run=runs.get(account.id),
            next_fetch_at=schedule.next_fetch_at(account),
            running_job=fetchjobs.current(account),
            test_failed=account.last_test_incoming_ok is False or account.last_test_outgoing_ok is False,
            queued=outgoing[account.id]["queued"],
            failed=outgoing[account.id]["failed"],
            subscription=subscribed.get(account.id),
        )
        for account in accounts
    }


def of_account(account: EmailAccount) -> AccountStatus:
    """The status of one account (see :func:`of_accounts`)."""
    return of_accounts([account])[account.id]
