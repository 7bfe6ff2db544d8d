"""Mailbox: folders and messages of an account, Fetch Emails (an RQ job with a progress bar), New Email."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.datastructures import FileStorage

from webapp.models import EmailAccount
from webapp.models.message import SENT_FOLDER
from webapp.services import fetchjobs, messages, sending, users
from webapp.services.errors import ConnectorError, NotFound
from webapp.views.access import readable_account, sendable_account
from webapp.views.htmx import is_htmx, render
from webapp.views.mailbox.forms import ComposeForm, FetchForm

bp = Blueprint("mailbox", __name__, url_prefix="/accounts")

PAGE_SIZE = 50


def _filters() -> messages.Filters:
    def day(name: str) -> datetime | None:
        try:
            value = date.fromisoformat(request.args.get(name, ""))
        except ValueError:
            return None
        return datetime(value.year, value.month, value.day, tzinfo=UTC)

    until = day("until")
    return messages.Filters(
        text=request.args.get("q", "")[:200],
        since=day("since"),
        # "until" is the whole day; the last day of year 9999 has no day after it: no upper bound.
        until=until + timedelta(days=1) if until and until.date() < date.max else None,
        unread=request.args.get("unread") == "1",
        attachments=request.args.get("attachments") == "1",
    )


def _context(account: EmailAccount, folder: str, **extra: Any) -> dict[str, Any]:
    listed = messages.page(account, folder, _filters(), request.args.get("after"), PAGE_SIZE)
    return {
        "account": account,
        "folder": folder,
        "folders": messages.folders(account),
        "messages": listed.messages,
        "next_cursor": listed.next_cursor,
        "args": request.args,
        "fetch_form": FetchForm(),
        "can_send": users.can_send(current_user, account),
        "sent_folder": SENT_FOLDER,
        **extra,
    }


def _default_folder(account: EmailAccount) -> str:
    return account.folder if account.incoming_protocol == "imap" else "INBOX"


@bp.route("/<int:account_id>/mailbox")
@login_required
def mailbox(account_id: int) -> ResponseReturnValue:
    account = readable_account(account_id)
    folder = request.args.get("folder") or _default_folder(account)
    job = None
    if job_id := request.args.get("job"):
        job = _job_status(account, job_id)
    return render_template("mailbox/mailbox.html", **_context(account, folder, job=job))


@bp.route("/<int:account_id>/fetch", methods=["POST"])
@login_required
def fetch(account_id: int) -> ResponseReturnValue:
    account = readable_account(account_id)
    if not FetchForm().validate_on_submit():
        abort(400)
    try:
        job_id = fetchjobs.enqueue(account)
    except ConnectorError as exc:
        flash(f"Fetch Emails could not start: {exc}", "error")
        return redirect(url_for("mailbox.mailbox", account_id=account.id))
    if is_htmx():
        status = _job_status(account, job_id)
        return render_template("mailbox/_fetch.html", account=account, job=status, fetch_form=FetchForm())
    return redirect(url_for("mailbox.mailbox", account_id=account.id, job=job_id))


@bp.route("/<int:account_id>/fetch/<job_id>")
@login_required
def fetch_progress(account_id: int, job_id: str) -> ResponseReturnValue:
    account = readable_account(account_id)
    status = _job_status(account, job_id)
    folder = _default_folder(account)
    context = (
        _context(account, folder, job=status)
        if status.finished
        else {"account": account, "job": status, "fetch_form": FetchForm()}
    )
    return render("mailbox/mailbox.html", "mailbox/_fetch.html", **context)


def _job_status(account: EmailAccount, job_id: str) -> fetchjobs.FetchStatus:
    try:
        status = fetchjobs.status(job_id)
    except NotFound:
        abort(404)
    if status.account_id != account.id:
        abort(404)
    return status


@bp.route("/<int:account_id>/fetch/<job_id>/cancel", methods=["POST"])
@login_required
def cancel_fetch(account_id: int, job_id: str) -> ResponseReturnValue:
    account = readable_account(account_id)
    if not FetchForm().validate_on_submit():
        abort(400)
    _job_status(account, job_id)
    fetchjobs.cancel(job_id)
    if is_htmx():
        status = _job_status(account, job_id)
        return render_template(
            "mailbox/_fetch.html", account=account, job=status, stopping=True, fetch_form=FetchForm()
        )
    return redirect(url_for("mailbox.mailbox", account_id=account.id, job=job_id))


@bp.route("/<int:account_id>/compose", methods=["GET", "POST"])
@login_required
def compose(account_id: int) -> ResponseReturnValue:
    account = sendable_account(account_id)
    form = ComposeForm()
    if form.validate_on_submit():
        draft = sending.Draft(
            to=form.to.data or "",
            cc=form.cc.data or "",
            bcc=form.bcc.data or "",
            subject=form.subject.data or "",
            text=form.text.data or "",
            html=form.html.data or "",
            attachments=tuple(_uploads(form.attachments.data)),
        )
        try:
            sent = sending.send(account, draft)
        except ConnectorError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(f"Sent: {sent.subject}", "success")
            return redirect(url_for("mailbox.mailbox", account_id=account.id, folder=SENT_FOLDER))
    return render_template("mailbox/compose.html", account=account, form=form)


def _uploads(files: list[FileStorage] | None) -> list[sending.OutgoingAttachment]:
    result = []
    for upload in files or []:
        if not isinstance(upload, FileStorage) or not upload.filename:
            continue
        # Browsers send a bare name; older ones sent the whole client path.
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
        result.append(sending.OutgoingAttachment(name, upload.read(), upload.mimetype or ""))
    return result
