"""Admins: the setup wizard — address and sign-in, primary or shared mailbox, servers (found by automatic
configuration, each marked with its source), then Test and Save. Each step is an HTMX fragment checked
before the next; Back keeps every answer; nothing is saved until Save (docs/accounts.md)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from flask import Blueprint, flash, make_response, redirect, request, url_for
from flask.typing import ResponseReturnValue

from webapp.services.account import accounts, connection, setup
from webapp.services.account.connection import ConnectionReport
from webapp.services.errors import ConnectorError, Invalid
from webapp.views.access import admin_required
from webapp.views.accountinput import ports_map, seal_password
from webapp.views.htmx import is_htmx, render
from webapp.views.wizard.state import STEPS, WizardState

bp = Blueprint("wizard", __name__, url_prefix="/accounts/setup")

# What each step shows (the rest of the answers ride along as hidden inputs).
SHOWN: dict[int, set[str]] = {
    1: {"address", "auth_method"},
    2: {"mailbox_kind", "password_token", "primary_account_id", "login_format"},
    3: {
        "receive",
        "send",
        "username",
        "incoming_protocol",
        "incoming_security",
        "incoming_host",
        "incoming_port",
        "folder",
        "outgoing_host",
        "outgoing_security",
        "outgoing_port",
        "smtp_auth",
        "tls_verify",
        "ca_cert_pem",
        "choice",
    },
    4: {"name", "display_name"},
}
CHECKS = {1: WizardState.check_address, 2: WizardState.check_mailbox, 3: WizardState.check_servers}


@bp.route("/")
@admin_required
def start() -> ResponseReturnValue:
    """The first step (the overview's Add account and the welcome screen's Get started lead here)."""
    return _page(WizardState(), 1)


@bp.route("/", methods=["POST"])
@admin_required
def step() -> ResponseReturnValue:
    """Every button of the wizard: ``go`` says which (a step number, ``choose``, ``test``, ``save``)."""
    state = WizardState.from_form(request.form)
    at = _step_number(request.form.get("at"))
    go = request.form.get("go", "")
    try:
        state = _read_step(state, at)
    except Invalid as exc:
        return _page(state, at, error=str(exc))
    if go == "choose":
        return _page(state.applying(_index(state.choice)), 3)
    if go in ("test", "save", "save-anyway"):
        return _finish(state, go)
    target = _step_number(go)
    if target > at:
        for number in range(1, target):  # every step before the target must hold (a tampered page too)
            try:
                if number in CHECKS:
                    CHECKS[number](state)
            except ConnectorError as exc:
                return _page(state, number, error=str(exc))
    if target == 3 and state.looked_up != state.lookup_key():
        state = _look_up(state)
    return _page(state, target)


def _read_step(state: WizardState, at: int) -> WizardState:
    """What the step's own inputs need beyond the form: the password sealed, the CA file read."""
    if at == 2 and request.form.get("password"):
        state = replace(state, password_token=seal_password(request.form["password"]))
    if at == 3:
        upload = request.files.get("ca_cert_file")
        if upload is not None and upload.filename:
            pem = accounts.ca_from_upload(upload.read(accounts.MAX_CA_BYTES + 1))
            state = replace(state, ca_cert_pem=pem, tls_verify="custom")
    return state


def _look_up(state: WizardState) -> WizardState:
    """Fill in the servers: a shared mailbox's primary account's, else what discovery finds."""
    if state.shared:
        try:
            primary = accounts.by_id(int(state.primary_account_id))
        except (ValueError, ConnectorError):
            return state
        found, problems = [setup.of_primary(primary)], list[str]()
        # On the primary's servers: their certificates are checked as the primary checks them.
        state = replace(state, tls_verify=primary.tls_verify, ca_cert_pem=primary.ca_cert_pem or "")
    else:
        try:
            found, problems = setup.discovered(state.address.strip())
        except ConnectorError as exc:
            found, problems = [], [str(exc)]
    state = state.with_suggestions(found, problems)
    return state.applying(0) if found else replace(state, incoming_source="", outgoing_source="")


def _finish(state: WizardState, go: str) -> ResponseReturnValue:
    for number, check in CHECKS.items():
        try:
            check(state)
        except ConnectorError as exc:
            return _page(state, number, error=str(exc))
    try:
        settings = state.settings()
        report = None if go == "save-anyway" else connection.test_settings(settings)
    except ConnectorError as exc:
        return _page(state, 4, error=str(exc))
    if go == "test" or (report is not None and not report.ok):
        return _page(state, 4, report=report, offer_anyway=go == "save")
    try:
        account = accounts.create(settings)
    except ConnectorError as exc:
        return _page(state, 4, error=str(exc), report=report)
    if report is not None:
        connection.record(account, report)
    tested = " Its connection was tested and works." if report is not None else " It was saved without a working test."
    flash(f"Account {account.name} added.{tested}", "success")
    target = url_for("accounts.show", account_id=account.id)
    if is_htmx():
        response = make_response("", 204)
        response.headers["HX-Redirect"] = target
        return response
    return redirect(target)


def _page(
    state: WizardState,
    number: int,
    *,
    error: str | None = None,
    report: ConnectionReport | None = None,
    offer_anyway: bool = False,
) -> ResponseReturnValue:
    context: dict[str, Any] = {
        "state": state,
        "number": number,
        "steps": STEPS,
        "carried": state.carried(SHOWN[number]),
        "error": error,
        "report": report,
        "offer_anyway": offer_anyway,
        "primaries": accounts.primaries() if number == 2 else [],
        "suggestions": state.suggestions() if number == 3 else [],
        "problems": state.problem_list() if number == 3 else [],
        "ports": ports_map(),
    }
    response = make_response(render("wizard/page.html", "wizard/_step.html", **context))
    if is_htmx():
        # Each step gets its own history entry: the browser's Back returns to the step before (htmx keeps
        # a snapshot of each), not to the page before the wizard. Opening such an address anew starts over.
        response.headers["HX-Push-Url"] = url_for("wizard.start", step=number)
    return response


def _step_number(value: str | None) -> int:
    return int(value) if value in ("1", "2", "3", "4") else 1


def _index(value: str) -> int:
    return int(value) if value.isascii() and value.isdigit() and len(value) < 4 else 0
