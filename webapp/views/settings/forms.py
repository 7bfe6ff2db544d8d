from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectField


class SettingsForm(FlaskForm):
    timezone = SelectField(
        "Time zone", description="Times on every page are shown in this zone; hover a time to see it in UTC."
    )
