from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import HiddenField, MultipleFileField, StringField, TextAreaField
from wtforms.validators import Length, Optional


class ComposeForm(FlaskForm):
    # To and Subject are checked when sending (a draft may be half done).
    to = StringField(
        "To",
        description="Several addresses: separate them with ; or , — names too: Bob <bob@example.com>, "
        '"Doe, John" <j@example.com>',
    )
    cc = StringField("CC", description="Like To.")
    bcc = StringField("BCC", description="Like To; never shown to the other recipients.")
    reply_to = StringField("Reply-To", description="Like To: where answers go, when not to this account.")
    subject = StringField("Subject", validators=[Length(max=998)])
    text = TextAreaField("Text")
    html = TextAreaField(
        "HTML (optional)", description="Without a text body, a plain-text version is made from the HTML."
    )
    attachments = MultipleFileField("Attachments")
    send_after = StringField(
        "Send after (queued mail only)", validators=[Optional()], description="Empty: as soon as possible."
    )
    draft_id = HiddenField()
    # A reply keeps its thread: the Message-IDs it answers (set when the draft was made).
    in_reply_to = HiddenField()
    references = HiddenField()


class FetchForm(FlaskForm):
    """Only the CSRF token: Fetch Emails is a POST."""
