"""The public Python interface of Email Connector, one function per Mendix action.

Call it inside an app context (``with app.app_context():``). Functions take model objects or ids (or
account names) and raise a :class:`ConnectorError` subclass carrying the reason when they fail. The
remaining actions arrive with the issues that build them (templates, autoconfig).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from webapp.adapters.autoconfig import Provider as EmailProvider
from webapp.adapters.autoconfig import ServerSetting
from webapp.models import Attachment, EmailAccount, EmailMessage
from webapp.models.fetchrun import RunTrigger as _RunTrigger
from webapp.services.account import accounts as _accounts
from webapp.services.account import autoconfig as _autoconfig
from webapp.services.account import connection as _connection
from webapp.services.account.connection import ConnectionReport
from webapp.services.errors import Conflict, ConnectionFailed, ConnectorError, Invalid, NotFound
from webapp.services.outgoing import drafts as _drafts
from webapp.services.outgoing import outbox as _outbox
from webapp.services.outgoing import sending as _sending
from webapp.services.outgoing.sending import Draft, OutgoingAttachment
from webapp.services.receiving import fetchjobs as _fetchjobs
from webapp.services.receiving import subscriptions as _subscriptions

__all__ = [
    "Attachment",
    "Conflict",
    "ConnectionFailed",
    "ConnectionReport",
    "ConnectorError",
    "Draft",
    "EmailAccount",
    "EmailMessage",
    "EmailProvider",
    "Invalid",
    "NotFound",
    "OutgoingAttachment",
    "ServerSetting",
    "get_auto_config",
    "queue_email",
    "retrieve_email_messages",
    "send_email",
    "send_queued_emails",
    "subscribe_to_incoming_email",
    "test_connection",
    "unsubscribe_from_incoming_email",
]


def _account(account: EmailAccount | int | str) -> EmailAccount:
    if isinstance(account, EmailAccount):
        return account
    if isinstance(account, int):
        return _accounts.by_id(account)
    return _accounts.get(account)


def test_connection(account: EmailAccount | int | str) -> ConnectionReport:
    """Log in to the account's incoming and outgoing servers and report each result."""
    return _connection.test_connection(_account(account))


def send_email(account: EmailAccount | int | str, message: Draft | Mapping[str, Any] | EmailMessage) -> bool:
    """Send ``message`` now from ``account``; return True, or raise with the reason.

    ``message`` is a :class:`Draft` or a mapping with ``to``, ``subject``, ``text`` and/or ``html``, and
    optionally ``cc``, ``bcc`` (addresses separated by ``;``) and ``attachments`` (paths, or
    :class:`OutgoingAttachment`) — or a stored draft of the account (an EmailMessage in status DRAFT,
    as Mendix's ``SendEmail(EmailAccount, EmailMessage)``), which then becomes the sent message. The sent
    message is stored in the account's Sent view; a failure is also written to the account's Error logs.
    """
    sender = _account(account)
    if isinstance(message, EmailMessage):
        _drafts.send(sender, message.id)
        return True
    draft = message if isinstance(message, Draft) else _draft(message)
    _sending.send(sender, draft)
    return True


def queue_email(
    account: EmailAccount | int | str,
    message: Draft | Mapping[str, Any] | EmailMessage,
    send_after: datetime | None = None,
) -> EmailMessage:
    """Queue ``message`` (as for :func:`send_email`, a stored draft included) for the workers;
    ``send_after`` (with a time zone): not before then. Returns the QUEUED message: its Message-ID is
    what every attempt sends."""
    sender = _account(account)
    if isinstance(message, EmailMessage):
        return _drafts.queue(sender, message.id, send_after)
    draft = message if isinstance(message, Draft) else _draft(message)
    return _outbox.enqueue(sender, draft, send_after=send_after)


def send_queued_emails() -> int:
    """One pass over the queue (Mendix ``SE_SendQueuedEmails``): send every account's due queued mail
    now, in this process. Returns how many messages were sent."""
    done = _outbox.send_queued()
    return done.result.sent if done.result else 0


def retrieve_email_messages(
    account: EmailAccount | int | str,
    on_fetch: str | None = None,
    on_complete: str | None = None,
    on_error: str | None = None,
) -> str:
    """Queue a fetch of the account (as its settings say) and return the RQ job id at once.

    Each callback is a dotted path to a Python callable, run in the worker, or the URL of one of the
    account's webhooks. ``on_fetch`` gets each stored batch (a list of complete EmailMessage, bodies and
    attachments stored) in batch order, ``on_complete`` the summary (a dict), ``on_error`` the error (a
    str). See docs/webhooks.md.
    """
    return _fetchjobs.enqueue(_account(account), on_fetch, on_complete, on_error, trigger=_RunTrigger.API)


def subscribe_to_incoming_email(
    account: EmailAccount | int | str,
    on_new_email: str | Callable[..., Any] | None = None,
    on_state_changed: str | Callable[..., Any] | None = None,
) -> None:
    """Subscribe the account to incoming mail (Mendix ``SubscribeToIncomingEmail``; IMAP only).

    The subscription is stored: ``email-connector subscriber`` (which ``make run`` starts) takes it within
    seconds, and again after any restart; subscribing twice changes the one subscription. New mail is
    stored as a fetch stores it and handed to ``on_new_email`` as a list of complete EmailMessage;
    ``on_state_changed(state, comment)`` hears CONNECTED, RECONNECTED, CONNECTIONTOSERVERLOST,
    CONNECTIONRETRYEXHAUSTED and SUBSCRIPTIONFAILED. Callbacks are module-level functions (or their
    dotted paths: they run in the subscriber process) or URLs of the account's webhooks.
    """
    _subscriptions.subscribe(_account(account), _target(on_new_email), _target(on_state_changed))


def unsubscribe_from_incoming_email(account: EmailAccount | int | str) -> bool:
    """End the account's subscription (Mendix ``UnsubscribeFromIncomingEmail``); False if there was none."""
    return _subscriptions.unsubscribe(_account(account))


def get_auto_config(address: str) -> list[EmailProvider]:
    """Every configuration found for ``address`` (Mendix ``GetAutoConfig``), best first, each with its
    ``source`` (preset, autoconfig, mx, srv) and ``origin``; [] when nothing was found. Raises Invalid for
    something that is not an address. Sources that failed are left out (``email-connector autoconfig``
    names them)."""
    return _autoconfig.get_auto_config(address)


def _target(callback: str | Callable[..., Any] | None) -> str | None:
    """A callback as stored: a module-level function becomes its dotted path (it runs in another process)."""
    if callback is None or isinstance(callback, str):
        return callback
    module, name = getattr(callback, "__module__", None), getattr(callback, "__qualname__", "")
    if not module or not name or "<" in name or "." in name:
        raise Invalid("a callback must be a module-level function (or its dotted path): it runs in the subscriber")
    return f"{module}.{name}"


def _draft(values: Mapping[str, Any]) -> Draft:
    def addresses(key: str) -> str:
        value = values.get(key) or ""
        return value if isinstance(value, str) else ";".join(value)

    attachments = []
    for item in values.get("attachments") or ():
        if isinstance(item, OutgoingAttachment):
            attachments.append(item)
        else:
            path = Path(item)
            try:
                attachments.append(OutgoingAttachment(path.name, path.read_bytes()))
            except OSError as exc:
                raise Invalid(f"attachment {str(path)!r} cannot be read: {exc.strerror}") from None
    return Draft(
        to=addresses("to"),
        cc=addresses("cc"),
        bcc=addresses("bcc"),
        reply_to=addresses("reply_to"),
        subject=str(values.get("subject") or ""),
        text=str(values.get("text") or ""),
        html=str(values.get("html") or ""),
        attachments=tuple(attachments),
    )
