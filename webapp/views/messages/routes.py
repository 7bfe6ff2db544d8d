"""The message page and its downloads. Nothing from a message reaches our own page unescaped."""

from __future__ import annotations

import io

from flask import Blueprint, Response, abort, render_template, request, send_file
from flask.typing import ResponseReturnValue
from flask_login import login_required

from webapp.security import message_page_csp
from webapp.services import accounts, display, messages
from webapp.services.errors import NotFound
from webapp.views.access import readable_message

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
    message = messages.ensure_parsed(readable_message(message_id))
    account = accounts.by_id(message.account_id)
    show_images = request.args.get("images") == "1"
    shown = display.message_view(message, account, request.args.get("view"), show_images)
    messages.mark_seen(message)
    response = Response(
        render_template("messages/show.html", message=message, account=account, shown=shown, show_images=show_images)
    )
    response.headers["Content-Security-Policy"] = message_page_csp(show_images)
    return response


@bp.route("/<int:message_id>/attachments/<int:attachment_id>")
@login_required
def attachment(message_id: int, attachment_id: int) -> ResponseReturnValue:
    message = readable_message(message_id)
    try:
        item = messages.attachment(message, attachment_id)
    except NotFound:
        abort(404)
    content_type = item.content_type.lower() if item.content_type.lower() in SAFE_TYPES else "application/octet-stream"
    return _download(messages.attachment_bytes(item), item.filename, content_type)


@bp.route("/<int:message_id>/raw")
@login_required
def raw(message_id: int) -> ResponseReturnValue:
    message = readable_message(message_id)
    return _download(messages.raw_bytes(message), f"message-{message.id}.eml", "message/rfc822")


def _download(data: bytes, filename: str, content_type: str) -> ResponseReturnValue:
    response = send_file(
        io.BytesIO(data), mimetype=content_type, as_attachment=True, download_name=filename or "attachment"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = DOWNLOAD_CSP
    response.headers["Cache-Control"] = "private, no-store"
    return response
