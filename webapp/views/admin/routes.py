"""User administration (admins only): create, reset password, role, grants, sessions, remove."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from wtforms import SelectChoice

from webapp.models import User
from webapp.models.user import ROLE_ADMIN, ROLE_USER
from webapp.security import current_session_token, renew_login
from webapp.services.account import accounts
from webapp.services.errors import ConnectorError
from webapp.services.identity import sessions, users
from webapp.views.access import admin_required
from webapp.views.accounts.forms import ConfirmForm
from webapp.views.admin.forms import GrantForm, NewUserForm, ResetPasswordForm, RoleForm

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _user(user_id: int) -> User:
    user = users.by_id(user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/users", methods=["GET", "POST"])
@admin_required
def user_list() -> ResponseReturnValue:
    """Admins: every user, and the form that creates one."""
    form = NewUserForm()
    if form.validate_on_submit():
        try:
            user = users.create(
                form.username.data or "",
                form.password.data or "",
                ROLE_ADMIN if form.is_admin.data else ROLE_USER,
            )
        except ConnectorError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(f"User {user.username} created.", "success")
            return redirect(url_for("admin.user_detail", user_id=user.id))
    return render_template("admin/users.html", users=users.all_users(), form=form)


def _detail_forms(user: User) -> dict[str, object]:
    grant_form = GrantForm(prefix="grant")
    grant_form.account_id.choices = [SelectChoice(str(a.id), a.name) for a in accounts.all_accounts()]
    return {
        "sessions": sessions.of_user(user),
        "password_form": ResetPasswordForm(prefix="password"),
        "role_form": RoleForm(prefix="role", role=user.role),
        "grant_form": grant_form,
        "confirm": ConfirmForm(),
    }


@bp.route("/users/<int:user_id>")
@admin_required
def user_detail(user_id: int) -> ResponseReturnValue:
    """Admins: one user's page: their accounts, and the forms for password, role and access."""
    user = _user(user_id)
    return render_template("admin/user.html", user=user, grants=users.grants_of(user), **_detail_forms(user))


def _post(user: User, action: str) -> ResponseReturnValue:
    forms = _detail_forms(user)
    try:
        if action == "password":
            form = forms["password_form"]
            assert isinstance(form, ResetPasswordForm)
            if form.validate_on_submit():
                users.set_password(user, form.password.data or "", _own_session(user))
                if user.id == current_user.id:
                    renew_login()  # this session goes on under a new token
                flash(f"Password of {user.username} was reset.", "success")
                return redirect(url_for("admin.user_detail", user_id=user.id))
        elif action == "role":
            role_form = forms["role_form"]
            assert isinstance(role_form, RoleForm)
            if role_form.validate_on_submit():
                users.set_role(user, role_form.role.data, _own_session(user))
                if user.id == current_user.id:
                    renew_login()
                flash(f"{user.username} is now {user.role}.", "success")
                return redirect(url_for("admin.user_detail", user_id=user.id))
        elif action == "grant":
            grant_form = forms["grant_form"]
            assert isinstance(grant_form, GrantForm)
            if grant_form.validate_on_submit():
                account = users.grant(
                    user,
                    grant_form.account_id.data,
                    read=bool(grant_form.can_read.data),
                    send=bool(grant_form.can_send.data),
                )
                flash(f"Access of {user.username} to {account.name} updated.", "success")
                return redirect(url_for("admin.user_detail", user_id=user.id))
    except ConnectorError as exc:
        flash(str(exc), "error")
    return render_template("admin/user.html", user=user, grants=users.grants_of(user), **forms), 400


def _own_session(user: User) -> str | None:
    # Changes to one's own user end one's other sessions, not the one making the change.
    return current_session_token() if user.id == current_user.id else None


@bp.route("/users/<int:user_id>/<any(password, role, grant):action>", methods=["POST"])
@admin_required
def user_update(user_id: int, action: str) -> ResponseReturnValue:
    """Admins: reset a user's password, change their role, or set their access to an account (``action``)."""
    return _post(_user(user_id), action)


@bp.route("/users/<int:user_id>/revoke/<int:account_id>", methods=["POST"])
@admin_required
def revoke(user_id: int, account_id: int) -> ResponseReturnValue:
    """Admins: take a user's access to one account away."""
    user = _user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    users.grant(user, account_id, read=False, send=False)  # NotFound (404) for an unknown account
    flash("Access removed.", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.route("/users/<int:user_id>/sessions/end", methods=["POST"])
@admin_required
def end_sessions(user_id: int) -> ResponseReturnValue:
    """Admins: end a user's sessions (one's own: all but this one, which goes on under a new token)."""
    user = _user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    own = _own_session(user)
    ended = users.end_sessions(user, own)
    noun = "session" if ended == 1 else "sessions"
    if own:
        renew_login()  # this session goes on under a new token
        flash(f"{ended} other {noun} of yours ended; this one stays.", "success")
    else:
        flash(f"{ended} {noun} of {user.username} ended.", "success")
    return redirect(url_for("admin.user_detail", user_id=user.id))


@bp.route("/users/<int:user_id>/delete", methods=["POST"])
@admin_required
def delete(user_id: int) -> ResponseReturnValue:
    """Admins: remove a user (never oneself)."""
    user = _user(user_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    if user.id == current_user.id:
        flash("You cannot remove yourself.", "error")
        return redirect(url_for("admin.user_detail", user_id=user.id))
    try:
        users.remove(user)
    except ConnectorError as exc:
        flash(str(exc), "error")
        return redirect(url_for("admin.user_detail", user_id=user.id))
    flash(f"User {user.username} removed.", "success")
    return redirect(url_for("admin.user_list"))
