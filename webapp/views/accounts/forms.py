from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

SECURITY_CHOICES = [
    SelectChoice("tls", "TLS (implicit)"),
    SelectChoice("starttls", "STARTTLS"),
    SelectChoice("none", "None (plain text)"),
]


class AccountForm(FlaskForm):
    name = StringField("Account name", validators=[DataRequired(), Length(max=100)])
    address = StringField("Email address", validators=[DataRequired(), Length(max=320)])
    display_name = StringField("Display name", validators=[Optional(), Length(max=200)])
    username = StringField("Username", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[Optional()])
    incoming_protocol = SelectField(
        "Incoming protocol", choices=[SelectChoice("imap", "IMAP"), SelectChoice("pop3", "POP3")]
    )
    incoming_security = SelectField("Incoming security", choices=SECURITY_CHOICES)
    incoming_host = StringField("Incoming server", validators=[DataRequired(), Length(max=255)])
    incoming_port = IntegerField("Incoming port", validators=[Optional(), NumberRange(1, 65535)])
    folder = StringField("Folder (IMAP)", default="INBOX", validators=[Optional(), Length(max=255)])
    outgoing_host = StringField("Outgoing (SMTP) server", validators=[DataRequired(), Length(max=255)])
    outgoing_port = IntegerField("Outgoing port", validators=[Optional(), NumberRange(1, 65535)])
    outgoing_security = SelectField("Outgoing security", choices=SECURITY_CHOICES, default="starttls")
    smtp_auth = SelectField(
        "SMTP authentication",
        choices=[SelectChoice("login", "Same login as incoming"), SelectChoice("none", "None (local relay)")],
    )
    timeout = IntegerField("Timeout (seconds)", default=30, validators=[NumberRange(1, 600)])
    tls_verify = SelectField(
        "TLS certificate verification",
        choices=[
            SelectChoice("system", "System CAs"),
            SelectChoice("custom", "Custom CA certificate"),
            SelectChoice("off", "Off (insecure)"),
        ],
    )
    ca_cert_pem = TextAreaField("Custom CA certificate (PEM)", validators=[Optional()])
    fetch_count = IntegerField("Number of emails to retrieve", default=50, validators=[NumberRange(1, 100000)])
    sanitize_html = BooleanField("Sanitize email to prevent XSS attacks", default=True)


class ConfirmForm(FlaskForm):
    """A form with only its CSRF token: for buttons that change state."""
