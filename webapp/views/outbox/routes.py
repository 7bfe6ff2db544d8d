"""The outbox of an account: Drafts, Queued, Sent and Failed tabs; retry, cancel, Send queued now;
Reply, Reply all and Forward (each makes a draft)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from webapp.models import EmailAccount
from webapp.services.errors import ConnectorError, NotFound
from webapp.services.outgoing import drafts, outbox
from webapp.views.access import readable_message, sendable_account
from webapp.views.outbox.forms import OutboxActionForm

bp = Blueprint("outbox", __name__)

TABS = {"drafts": "draft", "queued": "queued", "sent": "sent", "failed": "failed"}
PAGE_SIZE = 50


@bp.route("/accounts/<int:account_id>/outbox/<status>")
@login_required
def tab(account_id: int, status: str) -> ResponseReturnValue:
    """One tab of the account's outgoing mail, newest first (``before``: the previous page's last id)."""
    account = sendable_account(account_id)
    if status not in TABS:
        abort(404)
    before = request.args.get("before", type=int)
    rows = outbox.listing(account, TABS[status], before=before, limit=PAGE_SIZE + 1)
    if status == "queued":
        rows += [m for m in outbox.listing(account, "sending", limit=PAGE_SIZE) if before is None]
        rows.sort(key=lambda m: m.id, reverse=True)
    return render_template(
        "outbox/outbox.html",
        account=account,
        status=status,
        tabs=list(TABS),
        rows=rows[:PAGE_SIZE],
        next_before=rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None,
        counts=outbox.counts([account.id])[account.id],
        form=OutboxActionForm(),
    )


def _checked(account_id: int) -> EmailAccount:
    account = sendable_account(account_id)
    if not OutboxActionForm().validate_on_submit():
        abort(400)
    return account


@bp.route("/accounts/<int:account_id>/outbox/<int:message_id>/retry", methods=["POST"])
@login_required
def retry(account_id: int, message_id: int) -> ResponseReturnValue:
    """Queue a failed message again."""
    account = _checked(account_id)
    try:
        outbox.retry(account, [message_id])
    except NotFound:
        abort(404)
    except ConnectorError as exc:
        flash(str(exc), "error")
    else:
        flash("Queued again.", "success")
    return redirect(url_for("outbox.tab", account_id=account.id, status="failed"))


@bp.route("/accounts/<int:account_id>/outbox/retry-failed", methods=["POST"])
@login_required
def retry_failed(account_id: int) -> ResponseReturnValue:
    """Queue every failed message of the account again."""
    account = _checked(account_id)
    count = outbox.retry(account, all_failed=True)
    flash(f"Queued again: {count} message(s).", "success")
    return redirect(url_for("outbox.tab", account_id=account.id, status="queued"))


@bp.route("/accounts/<int:account_id>/outbox/<int:message_id>/cancel", methods=["POST"])
@login_required
def cancel(account_id: int, message_id: int) -> ResponseReturnValue:
    """Take a queued or failed message out of the queue: it becomes a draft."""
    account = _checked(account_id)
    try:
        outbox.cancel(account, message_id)
    except NotFound:
        abort(404)
    except ConnectorError as exc:
        flash(str(exc), "error")
        return redirect(url_for("outbox.tab", account_id=account.id, status="queued"))
    flash("Cancelled: it is a draft now.", "success")
    return redirect(url_for("outbox.tab", account_id=account.id, status="drafts"))


@bp.route("/accounts/<int:account_id>/outbox/send-now", methods=["POST"])
@login_required
def send_now(account_id: int) -> ResponseReturnValue:
    """Send queued now: messages waiting for a retry are due at once, and a worker is asked to send."""
    account = _checked(account_id)
    count = outbox.send_now(account)
    flash(f"Sending {count} queued message(s) now.", "success")
    return redirect(url_for("outbox.tab", account_id=account.id, status="queued"))


@bp.route("/accounts/<int:account_id>/drafts/<int:message_id>/delete", methods=["POST"])
@login_required
def delete_draft(account_id: int, message_id: int) -> ResponseReturnValue:
    """Delete a draft."""
    account = _checked(account_id)
    try:
        drafts.delete(account, message_id)
    except NotFound:
        abort(404)
    flash("Draft deleted.", "success")
    return redirect(url_for("outbox.tab", account_id=account.id, status="drafts"))


@bp.route("/messages/<int:message_id>/answer", methods=["POST"])
@login_required
def answer(message_id: int) -> ResponseReturnValue:
    """Reply, Reply all or Forward (``how``): a draft from the account the message came to, opened for editing."""
    original = readable_message(message_id)
    account = sendable_account(original.account_id)
    if not OutboxActionForm().validate_on_submit():
        abort(400)
    how = request.form.get("how", "reply")
    if how in ("reply", "reply-all"):
        draft = drafts.reply(account, original, to_all=how == "reply-all")
    elif how in ("forward", "forward-eml"):
        try:
            draft = drafts.forward(account, original, as_attachment=how == "forward-eml")
        except ConnectorError as exc:
            flash(str(exc), "error")
            return redirect(url_for("messages.show", message_id=original.id))
    else:
        abort(400)
    return redirect(url_for("mailbox.compose", account_id=account.id, draft=draft.id))
