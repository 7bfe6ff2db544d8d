from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import MultipleFileField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class ComposeForm(FlaskForm):
    to = StringField("To", validators=[DataRequired()], description="Several addresses: separate them with ;")
    cc = StringField("CC")
    bcc = StringField("BCC")
    subject = StringField("Subject", validators=[DataRequired(), Length(max=998)])
    text = TextAreaField("Text")
    html = TextAreaField("HTML (optional)")
    attachments = MultipleFileField("Attachments")


class FetchForm(FlaskForm):
    """Only the CSRF token: Fetch Emails is a POST."""
