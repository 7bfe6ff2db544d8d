"""Fetching over POP3: the maildrop by UIDL, in batches; DELE only when "delete after fetch" is set, and only
after the message is committed (the server applies it at QUIT)."""

from __future__ import annotations

from sqlalchemy import select, update

from webapp.adapters.mail import pop3
from webapp.database import write_transaction
from webapp.extensions import db
from webapp.models import EmailAccount, EmailMessage
from webapp.services.account import accounts
from webapp.services.receiving import store
from webapp.services.receiving.batches import BatchRun, chunks, known_uidls


class Pop3Run(BatchRun):
    """A fetch over POP3: the maildrop by UIDL, in batches; DELE only when the account asks, after the commit."""

    def run(self) -> None:
        """Fetch the new messages of the maildrop by UIDL, in batches; DELE after each commit when asked."""
        account = self.account
        with pop3.session(accounts.incoming_endpoint(account), accounts.incoming_auth(account)) as client:
            listing = client.uidls()
            if account.fetch_strategy == "replicate":
                wanted = listing
            elif account.fetch_order == "newest":
                wanted = listing[-account.fetch_count :]
            else:
                wanted = listing[: account.fetch_count]
            known = known_uidls(account, [uidl for _n, uidl in wanted])
            todo = [(number, uidl) for number, uidl in wanted if uidl not in known]
            self.summary.total = len(wanted)
            self.summary.total_on_server = len(listing)
            self.summary.skipped = len(wanted) - len(todo)
            self.progress.total, self.progress.done, self.progress.folder = len(wanted), self.summary.skipped, "INBOX"
            self.report(self.progress)
            if account.after_fetch == "delete":
                # Stored by an earlier run that ended before QUIT: their DELE never took effect.
                pending = _pending_uidls(account)
                for number, uidl in listing:
                    if uidl in pending:
                        client.delete(number)
            limit = account.max_message_size
            for batch in chunks(todo, account.batch_size):
                self._check_cancel()
                items = []
                for number, uidl in batch:
                    size = client.size(number) if limit else 0
                    origin = store.Origin("INBOX", uidl=uidl)
                    if limit and size > limit:
                        received = store.Received(origin, client.headers(number), oversize=size,
                                                     pending_action=self.pending_action)  # fmt: skip
                    else:
                        received = store.Received(origin, client.retrieve(number),
                                                     pending_action=self.pending_action)  # fmt: skip
                    items.append(self._prepared(received))
                self.failpoints.hit("downloaded")
                self._store(items, None, 0, f"INBOX:{batch[0][1]}-{batch[-1][1]}")
                if account.after_fetch == "delete":
                    for number, _uidl in batch:
                        client.delete(number)  # takes effect at QUIT, after the commit above
                self._advance(len(batch))
        # QUIT went through: the server has applied every DELE of this session.
        if account.after_fetch == "delete":
            with write_transaction():
                db.session.execute(
                    update(EmailMessage)
                    .where(EmailMessage.account_id == account.id, EmailMessage.pending_action.is_not(None))
                    .values(pending_action=None)
                )
                db.session.commit()


def _pending_uidls(account: EmailAccount) -> set[str]:
    query = select(EmailMessage.uidl).where(
        EmailMessage.account_id == account.id, EmailMessage.pending_action.is_not(None)
    )
    return {uidl for uidl in db.session.scalars(query) if uidl is not None}
