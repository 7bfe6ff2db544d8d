from flask_wtf import FlaskForm
from flask_wtf.file import FileField
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

from webapp.models.account import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_FETCH_COUNT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_SEND_ATTEMPTS,
    DEFAULT_TIMEOUT,
    MAX_BATCH_SIZE,
    MAX_FETCH_COUNT,
    MAX_FETCH_EVERY_MINUTES,
    MAX_MESSAGE_SIZE,
    MAX_SEND_ATTEMPTS,
    MAX_SEND_CONNECTIONS,
    MAX_SEND_PER_MINUTE,
    MAX_TIMEOUT,
)

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
    primary_account_id = SelectField("Shared mailbox of", choices=[], validate_choice=False)
    login_format = SelectField(
        "Shared-mailbox login form",
        choices=[
            SelectChoice("exchange", "Exchange / Microsoft 365: primary@domain\\shared"),
            SelectChoice("dovecot", "Dovecot master user: shared*primary"),
            SelectChoice("plain", "The primary's own login"),
        ],
        default="exchange",
    )
    incoming_host = StringField("Incoming server", validators=[Optional(), Length(max=255)])
    incoming_port = IntegerField("Incoming port", validators=[Optional(), NumberRange(1, 65535)])
    folder = StringField("Folder (IMAP)", default="INBOX", validators=[Optional(), Length(max=255)])
    outgoing_host = StringField("Outgoing (SMTP) server", validators=[Optional(), Length(max=255)])
    outgoing_port = IntegerField("Outgoing port", validators=[Optional(), NumberRange(1, 65535)])
    outgoing_security = SelectField("Outgoing security", choices=SECURITY_CHOICES, default="starttls")
    smtp_auth = SelectField(
        "SMTP authentication",
        choices=[SelectChoice("login", "Same login as incoming"), SelectChoice("none", "None (local relay)")],
    )
    timeout = IntegerField("Timeout (seconds)", default=DEFAULT_TIMEOUT, validators=[NumberRange(1, MAX_TIMEOUT)])
    tls_verify = SelectField(
        "TLS certificate verification",
        choices=[
            SelectChoice("system", "System CAs"),
            SelectChoice("custom", "Custom CA certificate"),
            SelectChoice("off", "Off (insecure)"),
        ],
    )
    ca_cert_file = FileField("Custom CA certificate: upload a PEM file…")
    ca_cert_pem = TextAreaField("…or paste it (PEM)", validators=[Optional()])
    fetch_count = IntegerField(
        "Number of emails to retrieve", default=DEFAULT_FETCH_COUNT, validators=[NumberRange(1, MAX_FETCH_COUNT)]
    )
    sanitize_html = BooleanField("Sanitize email to prevent XSS attacks", default=True)
    fetch_strategy = SelectField(
        "Fetch strategy",
        choices=[
            SelectChoice("latest", "Latest N emails"),
            SelectChoice("replicate", "Replicate everything in the folders"),
        ],
        default="latest",
    )
    fetch_order = SelectField(
        "Which N",
        choices=[SelectChoice("newest", "The newest"), SelectChoice("oldest", "The oldest")],
        default="newest",
    )
    batch_size = IntegerField(
        "Email batch size", default=DEFAULT_BATCH_SIZE, validators=[NumberRange(1, MAX_BATCH_SIZE)]
    )
    # One line per folder (the API and older pages post several); the form shows one line to add a folder
    # that the server's list does not show.
    folders = TextAreaField("Add a folder by name", validators=[Optional()])
    max_message_size = IntegerField(
        "Maximum message size (bytes, 0: no limit)",
        default=DEFAULT_MAX_MESSAGE_SIZE,
        validators=[NumberRange(0, MAX_MESSAGE_SIZE)],
    )
    fetch_every_minutes = IntegerField(
        "Fetch every N minutes (0: never)", default=0, validators=[NumberRange(0, MAX_FETCH_EVERY_MINUTES)]
    )
    max_send_attempts = IntegerField(
        "Max. send attempts",
        default=DEFAULT_MAX_SEND_ATTEMPTS,
        validators=[NumberRange(1, MAX_SEND_ATTEMPTS)],
    )
    send_connections = IntegerField(
        "SMTP connections at once", default=1, validators=[NumberRange(1, MAX_SEND_CONNECTIONS)]
    )
    send_per_minute = IntegerField(
        "Messages per minute (0: no limit)", default=0, validators=[NumberRange(0, MAX_SEND_PER_MINUTE)]
    )
    append_to_sent = BooleanField("Put a copy of each sent message in the server's Sent folder (IMAP)")
    after_fetch = SelectField(
        "After fetching",
        choices=[
            SelectChoice("none", "Leave the message on the server as it is"),
            SelectChoice("seen", "Mark it as read (IMAP)"),
            SelectChoice("move", "Move it to a folder (IMAP)"),
            SelectChoice("delete", "Delete it from the server"),
        ],
        default="none",
    )
    after_fetch_folder = StringField("Move to folder", validators=[Optional(), Length(max=255)])


class ConfirmForm(FlaskForm):
    """A form with only its CSRF token: for buttons that change state."""


class WebhookForm(FlaskForm):
    # ids of their own: the account page has several forms (ids unique per page).
    url = StringField("Webhook URL", id="webhook-url", validators=[DataRequired(), Length(max=2000)])
    event_fetch = BooleanField("Each stored batch (fetch)", id="webhook-event-fetch", default=True)
    event_complete = BooleanField("Fetch complete", id="webhook-event-complete", default=True)
    event_error = BooleanField("Fetch failed", id="webhook-event-error", default=True)
    event_new_email = BooleanField("New mail (subscription)", id="webhook-event-new-email", default=True)
    event_idle_state = BooleanField("Subscription state changed", id="webhook-event-subscription-state", default=True)
