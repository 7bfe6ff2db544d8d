"""Settings: what each user chooses for themselves (the time zone of the pages' times)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required
from wtforms import SelectChoice

from webapp.services.errors import ConnectorError
from webapp.services.identity import preferences
from webapp.views.settings.forms import SettingsForm

bp = Blueprint("settings", __name__, url_prefix="/settings")

BROWSER = ""  # the choice "the browser's time zone"


@bp.route("/", methods=["GET", "POST"])
@login_required
def index() -> ResponseReturnValue:
    """The user's settings: the time zone the pages show times in (or the browser's)."""
    form = SettingsForm(timezone=current_user.timezone or BROWSER)
    form.timezone.choices = [
        SelectChoice(BROWSER, "The browser's time zone"),
        *(SelectChoice(name, name.replace("_", " ")) for name in preferences.time_zones()),
    ]
    if form.validate_on_submit():
        try:
            preferences.set_time_zone(current_user, form.timezone.data)
        except ConnectorError as exc:
            form.timezone.errors = [str(exc)]
        else:
            flash("Settings saved.", "success")
            return redirect(url_for("settings.index"))
    return render_template("settings/index.html", form=form)
