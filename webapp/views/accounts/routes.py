"""Accounts: list, add, edit, remove (with confirmation), test connection, error logs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from webapp.models import Delivery, EmailAccount, Webhook
from webapp.models.account import DEFAULT_BATCH_SIZE, DEFAULT_FETCH_COUNT, DEFAULT_MAX_SEND_ATTEMPTS, DEFAULT_TIMEOUT
from webapp.models.delivery import DELIVERED, EVENTS
from webapp.services.account import accounts, connection, errorlog, oauth, status
from webapp.services.account.accounts import AccountSettings
from webapp.services.errors import ConnectorError, NotFound
from webapp.services.events import dispatch, webhooks
from webapp.services.receiving import fetchruns, serverfolders, subscriptions
from webapp.views.access import admin_required, readable_account
from webapp.views.accountinput import ports_map, seal_password, unseal_password
from webapp.views.accounts.forms import AccountForm, ConfirmForm, WebhookForm
from webapp.views.htmx import is_htmx, render, vary

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


def _kept_sign_in(settings: AccountSettings, account: EmailAccount | None) -> AccountSettings:
    """The form has no OAuth fields yet (command line: ``accounts add --oauth``): an account's sign-in
    method and provider stay as they are."""
    if account is None:
        return settings
    return replace(settings, auth_method=account.auth_method, oauth_provider_id=account.oauth_provider_id)


def _kept_password() -> str | None:
    """The password typed before a failed Save, carried sealed for *Save anyway* (never written back)."""
    token = request.form.get("password_token", "")
    return unseal_password(token) if token else None


def _password_token(form: AccountForm) -> str:
    if form.password.data:
        return seal_password(form.password.data)
    return request.form.get("password_token", "") if form.is_submitted() else ""


def _switched_on(name: str) -> bool:
    """A Receive/Send switch: a hidden "0" and a checkbox "1" (the last sent wins); a post without the
    switch (the API, older pages) leaves it on."""
    sent = request.form.getlist(name)
    return not sent or sent[-1] != "0"


def _ca_pem(form: AccountForm) -> str | None:
    upload = form.ca_cert_file.data
    if upload is not None and upload.filename:
        return accounts.ca_from_upload(upload.read(accounts.MAX_CA_BYTES + 1))
    return form.ca_cert_pem.data or None


def _primary_choices(form: AccountForm, account: EmailAccount | None) -> None:
    others = [a for a in accounts.primaries() if account is None or a.id != account.id]
    form.primary_account_id.choices = [("", "— none: a primary account —")] + [
        (str(a.id), f"{a.name} ({a.address})") for a in others
    ]


def _settings(form: AccountForm) -> AccountSettings:
    def port(value: int | None, protocol: str, security: str) -> int:
        return value or accounts.default_port(protocol, security)

    primary = form.primary_account_id.data or ""
    ca_pem = _ca_pem(form)
    tls_verify = form.tls_verify.data
    if tls_verify == "system" and form.ca_cert_file.data is not None and form.ca_cert_file.data.filename:
        tls_verify = "custom"  # an uploaded CA is meant to be used (the new-user review saw it ignored)
    # What was uploaded shows in the form if it comes back (a failed test): the upload is not sent twice.
    form.ca_cert_pem.data, form.tls_verify.data = ca_pem, tls_verify
    return AccountSettings(
        name=form.name.data or "",
        address=form.address.data or "",
        display_name=form.display_name.data or "",
        username=form.username.data or "",
        password=form.password.data or _kept_password(),
        incoming_protocol=form.incoming_protocol.data,
        incoming_security=form.incoming_security.data,
        incoming_host=(form.incoming_host.data or "") if _switched_on("receive") else "",
        incoming_port=port(form.incoming_port.data, form.incoming_protocol.data, form.incoming_security.data),
        folder=form.folder.data or "INBOX",
        outgoing_host=(form.outgoing_host.data or "") if _switched_on("send") else "",
        outgoing_port=port(form.outgoing_port.data, "smtp", form.outgoing_security.data),
        outgoing_security=form.outgoing_security.data,
        smtp_auth=form.smtp_auth.data,
        timeout=form.timeout.data or DEFAULT_TIMEOUT,
        tls_verify=tls_verify,
        ca_cert_pem=ca_pem,
        fetch_count=form.fetch_count.data or DEFAULT_FETCH_COUNT,
        sanitize_html=bool(form.sanitize_html.data),
        fetch_strategy=form.fetch_strategy.data,
        fetch_order=form.fetch_order.data,
        batch_size=form.batch_size.data or DEFAULT_BATCH_SIZE,
        folders=_folders(form),
        max_message_size=form.max_message_size.data or 0,
        fetch_every_minutes=form.fetch_every_minutes.data or 0,
        after_fetch=form.after_fetch.data,
        after_fetch_folder=form.after_fetch_folder.data or "",
        max_send_attempts=form.max_send_attempts.data or DEFAULT_MAX_SEND_ATTEMPTS,
        send_connections=form.send_connections.data or 1,
        send_per_minute=form.send_per_minute.data or 0,
        append_to_sent=bool(form.append_to_sent.data),
        primary_account_id=int(primary) if primary.isascii() and primary.isdigit() and len(primary) < 12 else None,
        login_format=form.login_format.data or "plain",
    )


def _folders(form: AccountForm) -> list[str]:
    # The folder picker, when it was loaded, decides for the folders it listed (ticked or not); folders
    # typed in the list that the server did not list are kept as typed.
    listed = set(request.form.getlist("listed_folders"))
    picked = [name for name in request.form.getlist("picked_folders") if name in listed]
    value = form.folders.data or ""
    lines = value if isinstance(value, list) else value.splitlines()  # a list when taken from the account
    typed = [line.strip() for line in lines if line.strip() and line.strip() not in listed]
    chosen = list(dict.fromkeys([*typed, *picked]))
    main = (form.folder.data or "INBOX").strip()
    # The main folder (the Folder field) comes first when it is chosen: the server's listing order must not
    # make another folder the main one (found by the new-user review).
    return [main, *(name for name in chosen if name != main)] if main in chosen or not chosen else chosen


@bp.route("/")
@admin_required
def index() -> ResponseReturnValue:
    """Admins: the list of every account."""
    return render_template("accounts/list.html", accounts=accounts.all_accounts())


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new() -> ResponseReturnValue:
    """Admins: add an account, then go to its page to test the connection."""
    form = AccountForm()
    _primary_choices(form, None)
    report = None
    if form.validate_on_submit():
        try:
            settings = _settings(form)
            report = None if request.form.get("save_anyway") else connection.test_settings(settings)
            if report is None or report.ok:
                account = accounts.create(settings)
                if report is not None:
                    connection.record(account, report)
        except ConnectorError as exc:
            form.form_errors.append(str(exc))
        else:
            if report is None or report.ok:
                tested = "Its connection was tested and works." if report else "It was saved without a test."
                flash(f"Account {account.name} added. {tested}", "success")
                return redirect(url_for("accounts.show", account_id=account.id))
    return _form_page(form, None, report)


def _form_page(form: AccountForm, account: EmailAccount | None, report: object = None) -> ResponseReturnValue:
    """The one-page form; after a failed test before Save, with the results and *Save anyway*."""
    return render_template("accounts/form.html", **_form_context(form, account, report))


def _form_context(form: AccountForm, account: EmailAccount | None, report: object) -> dict[str, Any]:
    return {
        "form": form,
        "account": account,
        "report": report,
        "ports": ports_map(),
        "chosen_folders": _chosen_folders(form, account),
        "password_token": _password_token(form),
        **_switches(form, account),
    }


def _inbox_first(found: list[serverfolders.ServerFolder]) -> list[serverfolders.ServerFolder]:
    """The picker's order: INBOX, then the others by name (servers list them in any order)."""
    return sorted(found, key=lambda f: (f.name.upper() != "INBOX", f.name.casefold()))


def _switches(form: AccountForm, account: EmailAccount | None) -> dict[str, bool]:
    """Receive and Send as the form shows them: as posted, else as the account has them (new: both on)."""
    if form.is_submitted():
        return {"receives": _switched_on("receive"), "sends": _switched_on("send")}
    return {"receives": account is None or account.receives, "sends": account is None or account.sends}


def _chosen_folders(form: AccountForm, account: EmailAccount | None) -> list[str]:
    if form.is_submitted():
        listed = set(request.form.getlist("listed_folders"))
        return [name for name in request.form.getlist("picked_folders") if name in listed]
    return account.fetch_folders if account is not None else []


@bp.route("/test-settings", methods=["POST"])
@admin_required
def test_new_settings() -> ResponseReturnValue:
    """The form's *Test*: log in with the settings as typed, before anything is saved."""
    return _test_form(None)


@bp.route("/<int:account_id>/test-settings", methods=["POST"])
@admin_required
def test_changed_settings(account_id: int) -> ResponseReturnValue:
    """The edit form's *Test*: the settings as typed (the stored password when none is typed)."""
    return _test_form(readable_account(account_id))


def _test_form(account: EmailAccount | None) -> ResponseReturnValue:
    form = AccountForm()
    _primary_choices(form, account)
    report, error = None, None
    if not form.validate_on_submit():
        error = "; ".join(f"{form[name].label.text}: {' '.join(map(str, e))}" for name, e in form.errors.items())
    else:
        try:
            report = connection.test_settings(_kept_sign_in(_settings(form), account), account)
        except ConnectorError as exc:
            error = str(exc)
    error = error or (None if report else "the form is incomplete")
    return render("accounts/form.html", "accounts/_form_test.html", error=error, **_form_context(form, account, report))


@bp.route("/form-folders", methods=["POST"])
@admin_required
def new_form_folders() -> ResponseReturnValue:
    """The form's folder picker for an account not saved yet: the server's folders, with the settings typed."""
    return _form_folders(None)


@bp.route("/<int:account_id>/form-folders", methods=["POST"])
@admin_required
def form_folders(account_id: int) -> ResponseReturnValue:
    """The edit form's folder picker, with the settings as typed (the stored password when none is typed)."""
    return _form_folders(readable_account(account_id))


def _form_folders(account: EmailAccount | None) -> ResponseReturnValue:
    form = AccountForm()
    _primary_choices(form, account)
    if not form.validate_on_submit():
        abort(400)
    chosen = _chosen_folders(form, account) or [form.folder.data or "INBOX"]
    try:
        settings = _kept_sign_in(_settings(form), account)
        found, error = _inbox_first(serverfolders.server_folders(accounts.unsaved(settings, account))), None
    except ConnectorError as exc:
        found, error = [], str(exc)
    return render_template("accounts/_server_folders.html", folders=found, error=error, chosen=chosen)


@bp.route("/<int:account_id>")
@login_required
def show(account_id: int) -> ResponseReturnValue:
    """The account page, for users who may read it: status, last fetches, tests (and webhooks for admins)."""
    account = readable_account(account_id)
    return render_template("accounts/show.html", **_show_context(account, ConfirmForm(), None))


def _show_context(
    account: EmailAccount, confirm: ConfirmForm, result: object, pending: tuple[str, ...] = ()
) -> dict[str, Any]:
    return {
        "account": account,
        "confirm": confirm,
        "result": result,
        "pending": pending,
        "labels": {server: connection.protocol_label(account, server) for server in connection.SERVERS},
        "primary": accounts.primary_of(account),
        "oauth_provider": oauth.provider_of(account),
        "shared_mailboxes": accounts.shared_of(account),
        "account_status": status.of_account(account),
        "runs": fetchruns.last_runs(account, 10),
        "subscription": (subscription := subscriptions.of(account)),
        # Webhook URLs as scheme and host only: their paths often carry secrets.
        "subscription_callbacks": [
            (what, webhooks.shown(target))
            for what, target in (
                ("new mail", subscription.on_new_email if subscription else None),
                ("state changes", subscription.on_state_changed if subscription else None),
            )
            if target
        ],
        **(_webhooks_context(account) if current_user.is_admin else {}),
    }


@bp.route("/<int:account_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(account_id: int) -> ResponseReturnValue:
    """Admins: change an account's settings (the password only when a new one is typed)."""
    account = readable_account(account_id)
    settings = accounts.settings_of(account)
    form = AccountForm(obj=settings)
    _primary_choices(form, account)
    if not form.is_submitted():
        form.folders.data = ""  # the picker shows the chosen folders
        form.primary_account_id.data = str(settings.primary_account_id or "")
    report = None
    if form.validate_on_submit():
        try:
            changed = _kept_sign_in(_settings(form), account)
            # A change of how the servers are reached is tested before it is saved (fetch options are not).
            testing = not request.form.get("save_anyway") and accounts.server_settings_changed(account, changed)
            report = connection.test_settings(changed, account) if testing else None
            if report is None or report.ok:
                accounts.update(account, changed)
                if report is not None:
                    connection.record(account, report)
        except ConnectorError as exc:
            form.form_errors.append(str(exc))
        else:
            if report is None or report.ok:
                restarted = subscriptions.settings_changed(account)
                again = " Its subscription connects again with the new settings." if restarted else ""
                tested = " The new server settings were tested and work." if report else ""
                flash("Account saved." + tested + again, "success")
                return redirect(url_for("accounts.show", account_id=account.id))
    return _form_page(form, account, report)


@bp.route("/<int:account_id>/delete", methods=["GET", "POST"])
@admin_required
def delete(account_id: int) -> ResponseReturnValue:
    """Admins: confirm, then remove the account and everything stored for it."""
    account = readable_account(account_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        name = account.name
        try:
            accounts.remove(account)
        except ConnectorError as exc:
            flash(f"Not removed: {exc}", "error")
            return redirect(url_for("accounts.show", account_id=account.id))
        flash(f"Account {name} and its stored messages were removed.", "success")
        return redirect(url_for("accounts.index"))
    return render_template("accounts/delete.html", account=account, form=form)


@bp.route("/<int:account_id>/subscription", methods=["POST"])
@admin_required
def subscription(account_id: int) -> ResponseReturnValue:
    """Admins: subscribe the account to incoming mail (or start it again), or unsubscribe it."""
    account = readable_account(account_id)
    _confirmed()
    action = request.form.get("action")
    try:
        if action == "start":
            subscriptions.subscribe(account)
            flash("Subscribed: the subscriber takes the account within seconds.", "success")
        elif action == "stop":
            subscriptions.unsubscribe(account)
            flash("Unsubscribed.", "success")
        else:
            abort(400)
    except ConnectorError as exc:
        flash(f"Not subscribed: {exc}", "error")
    return redirect(url_for("accounts.show", account_id=account.id) + "#subscription")


@bp.route("/<int:account_id>/test", methods=["POST"])
@admin_required
def test(account_id: int) -> ResponseReturnValue:
    """Admins: Test connection of both servers; with HTMX each server's result shows as soon as it is known."""
    account = readable_account(account_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    if is_htmx():
        # Each server is then checked by a request of its own, both at once: each result shows when known.
        context = _show_context(account, form, None, connection.used_servers(account))
        return render("accounts/show.html", "accounts/_test_result.html", **context)
    report = connection.test_connection(account)
    return render("accounts/show.html", "accounts/_test_result.html", **_show_context(account, form, report))


@bp.route("/<int:account_id>/test/<any(incoming, outgoing):server>", methods=["POST"])
@admin_required
def test_server(account_id: int, server: str) -> ResponseReturnValue:
    """One server's Test connection (an HTMX fragment the test result asks for as soon as it is shown)."""
    account = readable_account(account_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    check = connection.check(account, server)
    labels = {name: connection.protocol_label(account, name) for name in connection.SERVERS}
    # The status block on the page says when the account was last tested: it comes along (out of band).
    return render_template("accounts/_test_check.html", check=check, account=account, labels=labels, oob_status=True)


@bp.route("/<int:account_id>/server-folders")
@admin_required
def server_folders(account_id: int) -> ResponseReturnValue:
    """The folder picker: the server's folders as checkboxes (an HTMX fragment of the edit form)."""
    account = readable_account(account_id)
    try:
        found, error = _inbox_first(serverfolders.server_folders(account)), None
    except ConnectorError as exc:
        found, error = [], str(exc)
    return render_template(
        "accounts/_server_folders.html", account=account, folders=found, error=error, chosen=account.fetch_folders
    )


# --- webhooks (the page's fragment accounts/_webhooks.html) ----------------------------------------------

WEBHOOK_LOG_ON_PAGE = 10


def _webhooks_context(account: EmailAccount, **extra: Any) -> dict[str, Any]:
    hooks = webhooks.webhooks(account)
    context: dict[str, Any] = {
        "webhooks": [(hook, webhooks.webhook_deliveries(hook, WEBHOOK_LOG_ON_PAGE)) for hook in hooks],
        "callback_deliveries": webhooks.callback_deliveries(account, 20),
        "webhook_form": WebhookForm(formdata=None),
        "new_secret": None,
        "webhook_notice": None,
    }
    context.update(extra)
    return context


def _webhooks_response(account: EmailAccount, status: int = 200, **extra: Any) -> ResponseReturnValue:
    """The account page, or only its webhook fragment for HTMX (whose errors must be 200 to be swapped)."""
    context = {**_show_context(account, ConfirmForm(), None), **_webhooks_context(account, **extra)}
    return render("accounts/show.html", "accounts/_webhooks.html", 200 if is_htmx() else status, **context)


def _after(account: EmailAccount, hook_id: int | None, kind: str, text: str) -> ResponseReturnValue:
    """Show the outcome of a webhook action: in the fragment (HTMX), else flashed after a redirect."""
    if is_htmx():
        return _webhooks_response(account, webhook_notice={"hook": hook_id, "kind": kind, "text": text})
    flash(text, "success" if kind == "ok" else "error")
    if hook_id and request.form.get("back") == "log":
        return vary(redirect(url_for("accounts.webhook_log", account_id=account.id, webhook_id=hook_id)))
    anchor = f"webhook-{hook_id}" if hook_id else "webhooks"
    return vary(redirect(url_for("accounts.show", account_id=account.id, _anchor=anchor)))


def _own_webhook(account: EmailAccount, webhook_id: int) -> Webhook:
    try:
        return webhooks.get_webhook(webhook_id, account)
    except NotFound:
        abort(404)


def _confirmed() -> None:
    if not ConfirmForm().validate_on_submit():
        abort(400)


@bp.route("/<int:account_id>/webhooks", methods=["POST"])
@admin_required
def add_webhook(account_id: int) -> ResponseReturnValue:
    """Add a webhook; its signing secret is shown once, in the response (never flashed or stored)."""
    account = readable_account(account_id)
    form = WebhookForm()
    if not form.validate_on_submit():
        return _webhooks_response(account, 400, webhook_form=form)
    events = [e for e in EVENTS if getattr(form, f"event_{e}").data]
    try:
        hook, secret = webhooks.add_webhook(account, form.url.data or "", events)
    except ConnectorError as exc:
        form.form_errors.append(f"Webhook not added: {exc}")
        return _webhooks_response(account, 400, webhook_form=form)
    response = _webhooks_response(account, new_secret={"hook": hook, "secret": secret})
    response.headers["Cache-Control"] = "no-store"  # type: ignore[union-attr]
    return response


@bp.route("/<int:account_id>/webhooks/<int:webhook_id>")
@admin_required
def webhook_log(account_id: int, webhook_id: int) -> ResponseReturnValue:
    """A webhook's whole delivery log (the account page shows the newest few)."""
    account = readable_account(account_id)
    hook = _own_webhook(account, webhook_id)
    return render_template(
        "accounts/webhook.html", account=account, hook=hook, deliveries=webhooks.webhook_deliveries(hook, 200)
    )


@bp.route("/<int:account_id>/webhooks/<int:webhook_id>/delete", methods=["POST"])
@admin_required
def delete_webhook(account_id: int, webhook_id: int) -> ResponseReturnValue:
    """Admins: remove a webhook of the account, with its delivery log."""
    account = readable_account(account_id)
    _confirmed()
    webhooks.remove_webhook(account, webhook_id)
    return _after(account, None, "ok", "Webhook removed.")


@bp.route("/<int:account_id>/webhooks/<int:webhook_id>/test", methods=["POST"])
@admin_required
def test_webhook(account_id: int, webhook_id: int) -> ResponseReturnValue:
    """Send the webhook a ``test`` event now and show how it went."""
    account = readable_account(account_id)
    _confirmed()
    delivery = dispatch.send_test_to(account, webhook_id)
    return _after(account, webhook_id, *_outcome("Test event", delivery))


@bp.route("/<int:account_id>/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/redeliver", methods=["POST"])
@admin_required
def redeliver(account_id: int, webhook_id: int, delivery_id: int) -> ResponseReturnValue:
    """Send a delivered or failed delivery again now (a new delivery in the log)."""
    account = readable_account(account_id)
    _confirmed()
    try:
        again = dispatch.redeliver_of(account, webhook_id, delivery_id)
    except NotFound:
        raise  # a 404, like any id that is not this account's
    except ConnectorError as exc:
        return _after(account, webhook_id, "failed", f"Not redelivered: {exc}")
    return _after(account, webhook_id, *_outcome(f"Redelivery of #{delivery_id}", again))


def _outcome(what: str, delivery: Delivery) -> tuple[str, str]:
    if delivery.status == DELIVERED:
        return "ok", f"{what} delivered in {delivery.duration_ms} ms."
    return "failed", f"{what} failed: {delivery.last_error}"


@bp.route("/<int:account_id>/errors")
@login_required
def errors(account_id: int) -> ResponseReturnValue:
    """The account's Error logs, for users who may read it (newest first)."""
    account = readable_account(account_id)
    return render_template("accounts/errors.html", account=account, entries=errorlog.entries(account))
