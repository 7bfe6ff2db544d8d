"""First-run setup, login, logout and changing one's own password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from webapp.security import current_session_token, log_in, log_out, renew_login
from webapp.services.errors import ConnectorError
from webapp.services.identity import setup, users
from webapp.services.identity.users import LoginThrottled
from webapp.views.auth.forms import LoginForm, PasswordForm, SetupForm

bp = Blueprint("auth", __name__)


@bp.route("/setup", methods=["GET", "POST"])
def first_run() -> ResponseReturnValue:
    """First run: the setup token creates the first admin (only while there is no user), who is logged in."""
    if not setup.needs_setup():
        return redirect(url_for("auth.login"))
    form = SetupForm()
    if form.is_submitted():
        # Every mistake at once: the token is checked even when the passwords differ, and so on.
        valid = form.validate()
        token, username, password = form.token.data or "", form.username.data or "", form.password.data or ""
        for name, problem in setup.problems(token, username, password).items():
            field = form[name]
            if not field.errors:
                field.errors = [problem]
            valid = False
        if valid:
            try:
                user = setup.create_first_admin(token, username, password)
            except ConnectorError as exc:
                form.form_errors.append(str(exc))
            else:
                log_in(user)
                flash(f"Welcome, {user.username}. You are the admin.", "success")
                return redirect(url_for("main.index"))
    return render_template("auth/setup.html", form=form)


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    """The login page (the first-run page while there is no user); failed logins are throttled (429)."""
    if setup.needs_setup():
        return redirect(url_for("auth.first_run"))
    if current_user.is_authenticated:
        return redirect(url_for("main.index"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            user = users.authenticate(form.username.data or "", form.password.data or "", request.remote_addr)
        except LoginThrottled as exc:
            form.form_errors.append(str(exc))
            status = 429
        else:
            if user is None:
                form.form_errors.append("Wrong username or password.")
                status = 401
            else:
                log_in(user)
                return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout() -> ResponseReturnValue:
    """End this session and go to the login page."""
    log_out()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password() -> ResponseReturnValue:
    """Change one's own password (the current one is asked for); one's other sessions are logged out."""
    form = PasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            users.change_own_password(
                current_user,
                form.current.data or "",
                form.password.data or "",
                request.remote_addr,
                keep_session=current_session_token(),
            )
        except LoginThrottled as exc:
            form.form_errors.append(str(exc))
            status = 429
        except ConnectorError as exc:
            form.current.errors = [*form.current.errors, str(exc)]
        else:
            renew_login()
            flash("Your password was changed. Other sessions were logged out.", "success")
            return redirect(url_for("main.index"))
    return render_template("auth/password.html", form=form), status


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect after login is a phishing aid.
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and not urlsplit(target).netloc
        and "\\" not in target
    ):
        return target
    return url_for("main.index")
