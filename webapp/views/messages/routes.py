"""The message page and its downloads. Nothing from a message reaches our own page unescaped."""

from __future__ import annotations

import io
from datetime import UTC

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from webapp.adapters.mime.filenames import clean_filename
from webapp.models import Attachment
from webapp.security import current_session_key, message_page_csp, user_of_session
from webapp.services.reading import display, inline, messages
from webapp.views.access import readable_message
from webapp.views.listing import ListState
from webapp.views.messages.forms import MarkUnreadForm
from webapp.views.templating import user_zone

bp = Blueprint("messages", __name__, url_prefix="/messages")

# Served as themselves (still as downloads); anything else, HTML and SVG above all, as octet-stream.
SAFE_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain", "text/csv",
     "application/zip", "message/rfc822", "application/octet-stream"}
)  # fmt: skip
DOWNLOAD_CSP = "default-src 'none'; sandbox"


@bp.route("/<int:message_id>")
@login_required
def show(message_id: int) -> ResponseReturnValue:
    """A message the user may read, marked read: its HTML (sandboxed) or text, Previous/Next, remote images if asked."""
    show_images = request.args.get("images") == "1"

    def inline_link(part: Attachment) -> str:
        token = inline.sign(current_session_key(), message_id, part.id)
        return url_for("messages.inline_image", message_id=message_id, attachment_id=part.id, t=token)

    # Previous/Next walk the list the user came from: its search and filters come along in the links.
    state = ListState.from_args(request.args)
    opened = display.open_message(
        readable_message(message_id),
        view=request.args.get("view"),
        show_images=show_images,
        inline_link=inline_link,
        filters=state.filters(user_zone() or UTC),
        viewer=current_user,
    )
    response = Response(
        render_template(
            "messages/show.html",
            message=opened.message,
            account=opened.account,
            shown=opened.shown,
            show_images=show_images,
            state=state,
            near=opened.near,
            unread_form=MarkUnreadForm(),
            can_send=opened.can_send,
        )
    )
    response.headers["Content-Security-Policy"] = message_page_csp(show_images)
    return response


@bp.route("/<int:message_id>/unread", methods=["POST"])
@login_required
def mark_unread(message_id: int) -> ResponseReturnValue:
    """Mark the stored copy unread (never the server's) and go back to the list it came from."""
    message = readable_message(message_id)
    if not MarkUnreadForm().validate_on_submit():
        abort(400)
    messages.mark_unread(message)
    flash("Marked as unread.", "success")
    state = ListState.from_args(request.args)
    return redirect(url_for("mailbox.mailbox", account_id=message.account_id, **state.list_args(message.folder)))


@bp.route("/<int:message_id>/attachments/<int:attachment_id>")
@login_required
def attachment(message_id: int, attachment_id: int) -> ResponseReturnValue:
    """Download an attachment; a type not known to be safe goes out as application/octet-stream."""
    item = messages.download(readable_message(message_id), attachment_id)
    content_type = item.content_type if item.content_type in SAFE_TYPES else "application/octet-stream"
    return _download(item.data, item.filename, content_type)


@bp.route("/<int:message_id>/inline/<int:attachment_id>")
def inline_image(message_id: int, attachment_id: int) -> ResponseReturnValue:
    """An inline image of a message, for its sandboxed frame: the frame sends no session cookie, so the
    link carries a token signed for the login session that opened the page (services/inline.py), which
    must still be live; its user must still be able to read the message. Only raster images, never SVG."""
    user = current_user if current_user.is_authenticated else None
    if user is None:
        session_key = inline.session_key_of(request.args.get("t", ""), message_id, attachment_id)
        user = user_of_session(session_key) if session_key else None
    if user is None:
        abort(403)
    image = messages.inline_image(readable_message(message_id, user), attachment_id)
    response = send_file(io.BytesIO(image.data), mimetype=image.content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    # Not kept either: every page view signs new links (nothing to reuse), and a cached copy would
    # outlive the session the link ends with.
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/<int:message_id>/raw")
@login_required
def raw(message_id: int) -> ResponseReturnValue:
    """Download the message's stored bytes as an .eml file."""
    message = readable_message(message_id)
    return _download(messages.raw_bytes(message), f"message-{message.id}.eml", "message/rfc822")


def _download(data: bytes, filename: str, content_type: str) -> ResponseReturnValue:
    # Names stored before invisible characters were dropped at parsing still hold them: drop them here too.
    name = clean_filename(filename) or "attachment"
    response = send_file(io.BytesIO(data), mimetype=content_type, as_attachment=True, download_name=name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response
