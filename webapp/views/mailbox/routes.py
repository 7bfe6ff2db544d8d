"""Mailbox: folders and messages of an account, Fetch Emails (an RQ job with a progress bar), New Email."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from werkzeug.datastructures import FileStorage

from webapp.models import EmailAccount
from webapp.models.message import SENT_FOLDER
from webapp.services.errors import ConnectorError, Invalid, NotFound, PartlySent
from webapp.services.identity import users
from webapp.services.outgoing import drafts, sending
from webapp.services.reading import messages
from webapp.services.receiving import fetchjobs
from webapp.views.access import readable_account, sendable_account
from webapp.views.htmx import fragment_or_redirect, is_htmx, render
from webapp.views.listing import ListState
from webapp.views.mailbox.forms import ComposeForm, FetchForm
from webapp.views.templating import user_zone

bp = Blueprint("mailbox", __name__, url_prefix="/accounts")

PAGE_SIZE = 50


def _state() -> ListState:
    return ListState.from_args(request.args)


def _list(account: EmailAccount, state: ListState) -> dict[str, Any]:
    """The message list of ``state`` (one page, and the number of matches when searching)."""
    folder = state.folder or _default_folder(account)
    filters = state.filters(user_zone() or UTC)
    listed = messages.page(account, folder, filters, state.after or None, PAGE_SIZE)
    return {
        "account": account,
        "folder": folder,
        "state": state,
        "messages": listed.messages,
        "next_cursor": listed.next_cursor,
        "matches": messages.count(account, folder, filters) if state.filtered else None,
        "sent_folder": SENT_FOLDER,
    }


def _page(account: EmailAccount, state: ListState, **extra: Any) -> dict[str, Any]:
    """Everything the whole mailbox page needs."""
    return {
        **_list(account, state),
        "folders": messages.folders(account),
        "fetch_form": FetchForm(),
        "can_send": users.can_send(current_user, account),
        **extra,
    }


def _default_folder(account: EmailAccount) -> str:
    return account.main_folder


@bp.route("/<int:account_id>/mailbox")
@login_required
def mailbox(account_id: int) -> ResponseReturnValue:
    """The mailbox page of an account the user may read, with the progress of a fetch queued or running."""
    account = readable_account(account_id)
    job = None
    # The job the page asked for, else the account's running one: a fetch started elsewhere shows too.
    if job_id := request.args.get("job") or fetchjobs.current(account):
        job = _job_status(account, job_id)
    return render_template("mailbox/mailbox.html", **_page(account, _state(), job=job))


@bp.route("/<int:account_id>/fetch", methods=["POST"])
@login_required
def fetch(account_id: int) -> ResponseReturnValue:
    """Start Fetch Emails. The query string carries the list the user looks at, so that the progress
    refreshes that list (folder, search, filters) as batches land."""
    account = readable_account(account_id)
    state = _state()
    folder = state.folder or _default_folder(account)
    if not FetchForm().validate_on_submit():
        abort(400)
    try:
        job_id = fetchjobs.enqueue(account)
    except ConnectorError as exc:
        flash(f"Fetch Emails could not start: {exc}", "error")
        return redirect(url_for("mailbox.mailbox", account_id=account.id, **state.list_args(folder)))
    return fragment_or_redirect(
        "mailbox/_fetch.html",
        url_for("mailbox.mailbox", account_id=account.id, job=job_id, **state.list_args(folder)),
        account=account,
        job=_job_status(account, job_id),
        fetch_form=FetchForm(),
        state=state,
        folder=folder,
    )


@bp.route("/<int:account_id>/fetch/<job_id>")
@login_required
def fetch_progress(account_id: int, job_id: str) -> ResponseReturnValue:
    """The progress fragment (it polls itself). ``batch`` is the last batch the page has seen: when more
    were stored since, the list comes along out of band, so it fills while the fetch runs."""
    account = readable_account(account_id)
    status = _job_status(account, job_id)
    state = _state()
    if not is_htmx():
        return render("mailbox/mailbox.html", "mailbox/_fetch.html", **_page(account, state, job=status))
    seen_batch = request.args.get("batch", default=0, type=int)
    context: dict[str, Any] = {"account": account, "job": status, "fetch_form": FetchForm(), "state": state}
    context["folder"] = state.folder or _default_folder(account)
    if status.finished or status.batch > seen_batch:
        context.update(_list(account, state), refresh_list=True)
    return render("mailbox/mailbox.html", "mailbox/_fetch.html", **context)


def _job_status(account: EmailAccount, job_id: str) -> fetchjobs.FetchStatus:
    try:
        return fetchjobs.status(job_id, account)
    except NotFound:
        abort(404)


@bp.route("/<int:account_id>/fetch/<job_id>/cancel", methods=["POST"])
@login_required
def cancel_fetch(account_id: int, job_id: str) -> ResponseReturnValue:
    """Cancel a fetch of the account (it stops after its current batch) and show it stopping."""
    account = readable_account(account_id)
    if not FetchForm().validate_on_submit():
        abort(400)
    try:
        job = fetchjobs.cancel(job_id, account)
    except NotFound:
        abort(404)
    state = _state()
    folder = state.folder or _default_folder(account)
    return fragment_or_redirect(
        "mailbox/_fetch.html",
        url_for("mailbox.mailbox", account_id=account.id, job=job_id, **state.list_args(folder)),
        account=account,
        job=job,
        stopping=True,
        fetch_form=FetchForm(),
        state=state,
        folder=folder,
    )


@bp.route("/<int:account_id>/compose", methods=["GET", "POST"])
@login_required
def compose(account_id: int) -> ResponseReturnValue:
    """Write a message from an account the user may send from: Send now (kept in Sent), Queue (optionally
    not before a time) or Save draft. What was written is kept as a draft first, attachments included,
    so a failed send loses nothing; ``?draft=ID`` continues a draft."""
    account = sendable_account(account_id)
    form = ComposeForm()
    draft_id = request.args.get("draft", type=int)
    stored: list[Any] = []
    if request.method == "GET" and draft_id is not None:
        message = _draft_or_404(account, draft_id)
        _fill_form(form, drafts.draft_of_fields(message))
        form.draft_id.data = str(message.id)
        stored = list(message.attachments)
    elif form.validate_on_submit():
        action = request.form.get("action", "send")
        try:
            message = drafts.save(
                account,
                _draft_from(form),
                draft_id=_int(form.draft_id.data),
                keep_attachments=[int(v) for v in request.form.getlist("keep_attachment") if _is_number(v)],
            )
        except NotFound:
            abort(404)
        except ConnectorError as exc:
            form.form_errors.append(str(exc))
            return render_template("mailbox/compose.html", account=account, form=form, stored=[], zone=_zone_name())
        form.draft_id.data = str(message.id)
        stored = list(message.attachments)
        try:
            if action == "save":
                flash("Draft saved.", "success")
                return redirect(url_for("mailbox.compose", account_id=account.id, draft=message.id))
            if action == "queue":
                queued = drafts.queue(account, message.id, _send_after(form.send_after.data))
                flash(f"Queued: {queued.subject}", "success")
                return redirect(url_for("outbox.tab", account_id=account.id, status="queued"))
            sent = drafts.send(account, message.id)
        except PartlySent as exc:
            flash(f"Sent, but not to everyone: {exc}", "error")
            return redirect(url_for("mailbox.mailbox", account_id=account.id, folder=SENT_FOLDER))
        except ConnectorError as exc:
            form.form_errors.append(f"{exc} — what you wrote is kept as a draft.")
        else:
            if sent is None:
                flash("Sent, but it could not be kept in Sent: see the Error logs", "warning")
            else:
                flash(f"Sent: {sent.subject}", "success")
            return redirect(url_for("mailbox.mailbox", account_id=account.id, folder=SENT_FOLDER))
    return render_template("mailbox/compose.html", account=account, form=form, stored=stored, zone=_zone_name())


def _draft_or_404(account: EmailAccount, draft_id: int) -> Any:
    try:
        return drafts.get(account, draft_id)
    except NotFound:
        abort(404)


def _is_number(value: str) -> bool:
    # ASCII digits only: "²".isdigit() is true, int("²") is not.
    return value.isascii() and value.isdigit() and len(value) < 20


def _int(value: str | None) -> int | None:
    return int(value) if value and _is_number(value) else None


def _fill_form(form: ComposeForm, values: dict[str, str]) -> None:
    for name in ("to", "cc", "bcc", "reply_to", "subject", "text", "html", "in_reply_to", "references"):
        getattr(form, name).data = values.get(name, "")


def _draft_from(form: ComposeForm) -> sending.Draft:
    return sending.Draft(
        to=form.to.data or "",
        cc=form.cc.data or "",
        bcc=form.bcc.data or "",
        reply_to=form.reply_to.data or "",
        subject=form.subject.data or "",
        text=form.text.data or "",
        html=form.html.data or "",
        in_reply_to=form.in_reply_to.data or "",
        references=form.references.data or "",
        attachments=tuple(_uploads(form.attachments.data)),
    )


def _zone_name() -> str:
    zone = user_zone()
    return str(zone) if zone else "UTC"


def _send_after(value: str | None) -> datetime | None:
    """The form's local time (``datetime-local``: 2026-12-24T09:00) in the user's zone (UTC if unset)."""
    if not value or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Invalid(f"Send after: {value!r} is not a date and time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=user_zone() or UTC)
    return when


def _uploads(files: list[FileStorage] | None) -> list[sending.OutgoingAttachment]:
    result = []
    for upload in files or []:
        if not isinstance(upload, FileStorage) or not upload.filename:
            continue
        # Browsers send a bare name; older ones sent the whole client path.
        name = upload.filename.replace("\\", "/").rsplit("/", 1)[-1]
        result.append(sending.OutgoingAttachment(name, upload.read(), upload.mimetype or ""))
    return result
