"""The folders on an account's server (for the folder picker and ``email-connector folders``)."""

from __future__ import annotations

from webapp.adapters.errors import AdapterError
from webapp.adapters.mail import imap, pop3
from webapp.adapters.mail.imap import ServerFolder
from webapp.models import EmailAccount
from webapp.services.account import accounts, errorlog
from webapp.services.errors import ConnectionFailed

__all__ = ["ServerFolder", "server_folders"]


def server_folders(account: EmailAccount) -> list[ServerFolder]:
    """LIST the server's folders with their message counts (POP3 has only INBOX)."""
    try:
        endpoint, auth = accounts.incoming_endpoint(account), accounts.incoming_auth(account)
        if account.incoming_protocol == "pop3":
            with pop3.session(endpoint, auth) as maildrop:
                return [ServerFolder("INBOX", "", (), maildrop.stat().messages)]
        with imap.session(endpoint, auth) as mailbox:
            return mailbox.list_folders()
    except AdapterError as exc:
        reason = f"Incoming server: {exc}"
        if account.id is not None:  # an account not saved yet (the form's picker) has no Error logs
            errorlog.record(account, "folders", reason, detail=errorlog.detail_of(exc))
        raise ConnectionFailed(reason, exc.kind) from None
