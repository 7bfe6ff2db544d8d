"""What the message page shows: the HTML document for the sandboxed frame, or the text as safe HTML."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup

from webapp.adapters.mime import sanitizer
from webapp.extensions import db
from webapp.models import Attachment, EmailAccount, EmailMessage, User
from webapp.services.errors import NotFound
from webapp.services.identity import users
from webapp.services.reading import messages

# The frame's own document around the message HTML; its inline style is what the page CSP allows.
FRAME_DOCUMENT = (
    '<!doctype html><html><head><meta charset="utf-8"><style>'
    "body{font:15px/1.45 system-ui,sans-serif;margin:.5rem;word-wrap:break-word}img{max-width:100%;height:auto}"
    "</style></head><body>{body}</body></html>"
)


@dataclass(frozen=True)
class MessageView:
    html_doc: str | None  # the HTML to show; None when showing text
    text_html: Markup | None  # escaped, then linkified plain text
    blocked_images: int
    view: str  # "html" | "text"

    @property
    def frame_document(self) -> str | None:
        """A whole document for ``<iframe sandbox srcdoc>`` (a plain str: the template escapes it)."""
        return None if self.html_doc is None else FRAME_DOCUMENT.replace("{body}", self.html_doc)


@dataclass(frozen=True)
class OpenedMessage:
    """Everything the message page shows: the message, its account, how it is shown, its neighbours."""

    message: EmailMessage
    account: EmailAccount
    shown: MessageView
    near: messages.Neighbours
    can_send: bool = False  # the viewer may answer from the account (Reply, Forward)


def open_message(
    message: EmailMessage,
    *,
    view: str | None,
    show_images: bool,
    inline_link: Callable[[Attachment], str],
    filters: messages.Filters,
    viewer: User | None = None,
) -> OpenedMessage:
    """Open ``message`` as the message page does: parse it now if the fetch has not yet, mark it read, and
    find the messages next to it in the list (under ``filters``) the user came from."""
    message = messages.ensure_parsed(message)
    account = db.session.get(EmailAccount, message.account_id)
    if account is None:
        raise NotFound("the message's account was removed")
    shown = message_view(message, account, view, show_images, inline_link)
    messages.mark_seen(message)
    can_send = viewer is not None and users.can_send(viewer, account)
    return OpenedMessage(message, account, shown, messages.neighbours(message, filters), can_send)


def message_view(
    message: EmailMessage,
    account: EmailAccount,
    view: str | None,
    show_images: bool,
    inline_link: Callable[[Attachment], str],
) -> MessageView:
    """Sanitize (unless the account turned it off), link cid: images (``inline_link`` makes the link of
    one part) and hold back remote ones."""
    view = view if view in ("html", "text") else ("html" if message.html_body else "text")
    if view == "html" and message.html_body:
        if not account.sanitize_html:
            return MessageView(message.html_body, None, 0, "html")
        links = {cid: inline_link(part) for cid, part in messages.inline_images(message).items()}
        display = sanitizer.for_display(message.html_body, links, show_images)
        return MessageView(display.html, None, display.blocked_images, "html")
    return MessageView(None, sanitizer.text_to_html(message.text_body), 0, "text")
