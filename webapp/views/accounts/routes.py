"""Accounts: list, add, edit, remove (with confirmation), test connection, error logs."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required

from webapp.services import accounts, connection, errorlog
from webapp.services.accounts import AccountSettings
from webapp.services.errors import ConnectorError
from webapp.views.access import admin_required, readable_account
from webapp.views.accounts.forms import AccountForm, ConfirmForm
from webapp.views.htmx import render

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


def _settings(form: AccountForm) -> AccountSettings:
    def port(value: int | None, protocol: str, security: str) -> int:
        return value or accounts.default_port(protocol, security)

    return AccountSettings(
        name=form.name.data or "",
        address=form.address.data or "",
        display_name=form.display_name.data or "",
        username=form.username.data or "",
        password=form.password.data or None,
        incoming_protocol=form.incoming_protocol.data,
        incoming_security=form.incoming_security.data,
        incoming_host=form.incoming_host.data or "",
        incoming_port=port(form.incoming_port.data, form.incoming_protocol.data, form.incoming_security.data),
        folder=form.folder.data or "INBOX",
        outgoing_host=form.outgoing_host.data or "",
        outgoing_port=port(form.outgoing_port.data, "smtp", form.outgoing_security.data),
        outgoing_security=form.outgoing_security.data,
        smtp_auth=form.smtp_auth.data,
        timeout=form.timeout.data or 30,
        tls_verify=form.tls_verify.data,
        ca_cert_pem=form.ca_cert_pem.data or None,
        fetch_count=form.fetch_count.data or 50,
        sanitize_html=bool(form.sanitize_html.data),
    )


@bp.route("/")
@admin_required
def index() -> ResponseReturnValue:
    return render_template("accounts/list.html", accounts=accounts.all_accounts())


@bp.route("/new", methods=["GET", "POST"])
@admin_required
def new() -> ResponseReturnValue:
    form = AccountForm()
    if form.validate_on_submit():
        try:
            account = accounts.create(_settings(form))
        except ConnectorError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(f"Account {account.name} added. Test its connection below.", "success")
            return redirect(url_for("accounts.show", account_id=account.id))
    return render_template("accounts/form.html", form=form, account=None)


@bp.route("/<int:account_id>")
@login_required
def show(account_id: int) -> ResponseReturnValue:
    account = readable_account(account_id)
    return render_template("accounts/show.html", account=account, confirm=ConfirmForm(), result=None)


@bp.route("/<int:account_id>/edit", methods=["GET", "POST"])
@admin_required
def edit(account_id: int) -> ResponseReturnValue:
    account = readable_account(account_id)
    form = AccountForm(obj=accounts.settings_of(account))
    if form.validate_on_submit():
        try:
            accounts.update(account, _settings(form))
        except ConnectorError as exc:
            form.form_errors.append(str(exc))
        else:
            flash("Account saved.", "success")
            return redirect(url_for("accounts.show", account_id=account.id))
    return render_template("accounts/form.html", form=form, account=account)


@bp.route("/<int:account_id>/delete", methods=["GET", "POST"])
@admin_required
def delete(account_id: int) -> ResponseReturnValue:
    account = readable_account(account_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        name = account.name
        accounts.remove(account)
        flash(f"Account {name} and its stored messages were removed.", "success")
        return redirect(url_for("accounts.index"))
    return render_template("accounts/delete.html", account=account, form=form)


@bp.route("/<int:account_id>/test", methods=["POST"])
@admin_required
def test(account_id: int) -> ResponseReturnValue:
    account = readable_account(account_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    report = connection.test_connection(account)
    return render("accounts/show.html", "accounts/_test_result.html", account=account, confirm=form, result=report)


@bp.route("/<int:account_id>/errors")
@login_required
def errors(account_id: int) -> ResponseReturnValue:
    account = readable_account(account_id)
    return render_template("accounts/errors.html", account=account, entries=errorlog.entries(account))
