"""A copy of sent mail in the server's Sent folder over IMAP, for accounts that ask for it (providers such
as Gmail and Microsoft 365 file one themselves: there it stays off)."""

from __future__ import annotations

from collections.abc import Sequence

from webapp.adapters.errors import AdapterError
from webapp.adapters.mail import imap
from webapp.models import EmailAccount
from webapp.services.account import accounts, errorlog
from webapp.services.platform import blobs


def copy_to_sent_folder(account: EmailAccount, digests: Sequence[str]) -> str | None:
    """Put a copy of each sent message (by blob hash) in the server's Sent folder, in one IMAP session,
    when the account asks for it. The mail went out either way: a failure is an Error-log entry (and the
    reason returned), never a failed message."""
    if not digests or not account.append_to_sent or account.incoming_protocol != "imap":
        return None
    try:
        with imap.session(accounts.incoming_endpoint(account), accounts.incoming_auth(account)) as mailbox:
            folder = mailbox.sent_folder()
            for digest in digests:
                mailbox.append(folder, blobs.get(digest))
    except (AdapterError, blobs.BlobMissing) as exc:
        reason = f"sent, but the copy in the server's Sent folder failed: {exc}"
        errorlog.record(account, "send", reason, detail=f"messages={len(digests)}")
        return reason
    return None
