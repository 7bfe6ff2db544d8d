from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import MultipleFileField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length


class ComposeForm(FlaskForm):
    to = StringField(
        "To",
        validators=[DataRequired()],
        description="Several addresses: separate them with ; or , — names too: Bob <bob@example.com>, "
        '"Doe, John" <j@example.com>',
    )
    cc = StringField("CC", description="Like To.")
    bcc = StringField("BCC", description="Like To; never shown to the other recipients.")
    subject = StringField("Subject", validators=[DataRequired(), Length(max=998)])
    text = TextAreaField("Text")
    html = TextAreaField(
        "HTML (optional)", description="Without a text body, a plain-text version is made from the HTML."
    )
    attachments = MultipleFileField("Attachments")


class FetchForm(FlaskForm):
    """Only the CSRF token: Fetch Emails is a POST."""
