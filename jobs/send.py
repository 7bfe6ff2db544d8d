"""RQ entry point: drain an account's due queued mail over one of its connections."""

from __future__ import annotations

from jobs.context import app_context
from webapp.extensions import db
from webapp.models import EmailAccount
from webapp.services.outgoing import delivery, outbox


def send_account(account_id: int) -> dict[str, int]:
    """Send what is due for the account (see ``services.outgoing.delivery``); the counts."""
    with app_context():
        outbox.started_draining(account_id)
        delivery.sweep()
        account = db.session.get(EmailAccount, account_id)
        if account is None:
            return {"sent": 0, "retrying": 0, "failed": 0}
        result = delivery.drain(account)
        if result.sent:
            outbox.complete_bodies(account)
        return {"sent": result.sent, "retrying": result.retrying, "failed": result.failed, "busy": int(result.busy)}
