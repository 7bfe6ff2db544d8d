"""Mail accounts (the Mendix EmailAccount) and which users may use them."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import JSON, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webapp.models.base import Base, UTCDateTime, utcnow

if TYPE_CHECKING:
    from webapp.models.user import User

INCOMING_PROTOCOLS = ("imap", "pop3")
SECURITIES = ("none", "starttls", "tls")
SMTP_AUTH_MODES = ("login", "none")
TLS_VERIFY_MODES = ("system", "custom", "off")
FETCH_STRATEGIES = ("latest", "replicate")
FETCH_ORDERS = ("newest", "oldest")
AFTER_FETCH = ("none", "seen", "move", "delete")
# How a shared mailbox logs in with its primary account's credentials (docs/accounts.md):
# plain: the primary's login as it is; exchange: ``primary@domain\\shared``; dovecot: ``shared*primary``.
LOGIN_FORMATS = ("plain", "exchange", "dovecot")

# An account's defaults and limits, written once: the model, the services, the form and the CLI use these.
DEFAULT_TIMEOUT, MAX_TIMEOUT = 30, 600  # seconds
DEFAULT_FETCH_COUNT, MAX_FETCH_COUNT = 50, 100_000
DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE = 100, 5000
DEFAULT_MAX_MESSAGE_SIZE = 50 * 1024 * 1024  # bytes; bigger messages keep their headers only
MAX_MESSAGE_SIZE = 2**31 - 1  # the column's range; 0 means no limit
MAX_FETCH_EVERY_MINUTES = 7 * 24 * 60
DEFAULT_MAX_SEND_ATTEMPTS, MAX_SEND_ATTEMPTS = 3, 100
MAX_SEND_CONNECTIONS = 20
MAX_SEND_PER_MINUTE = 100_000


class EmailAccount(Base):
    __tablename__ = "email_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    # Lower-cased name: account names are unique regardless of case.
    name_key: Mapped[str] = mapped_column(String(100), unique=True)
    address: Mapped[str] = mapped_column(String(320))
    display_name: Mapped[str] = mapped_column(String(200), default="")
    username: Mapped[str] = mapped_column(String(320))
    # Fernet token; never the plain password (see services.secrets).
    password_encrypted: Mapped[str | None] = mapped_column(Text)

    incoming_protocol: Mapped[str] = mapped_column(String(8), default="imap")
    incoming_security: Mapped[str] = mapped_column(String(10), default="tls")
    incoming_host: Mapped[str] = mapped_column(String(255))
    incoming_port: Mapped[int]
    folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    # A shared mailbox logs in with its primary account's credentials, ``username`` being the shared
    # mailbox's own login name, in the server's ``login_format``. No database foreign key: SQLite could
    # only add one by copying the table (and deleting rows that refer to it); the services keep it right.
    primary_account_id: Mapped[int | None] = mapped_column(index=True)
    login_format: Mapped[str] = mapped_column(String(10), default="plain")
    # "password", or "oauth": SASL XOAUTH2 with tokens of ``oauth_provider_id`` (no database foreign key, as
    # above), its token cache encrypted here (msal's serialized cache).
    auth_method: Mapped[str] = mapped_column(String(10), default="password")
    oauth_provider_id: Mapped[int | None] = mapped_column(index=True)
    oauth_token_cache_encrypted: Mapped[str | None] = mapped_column(Text)

    outgoing_host: Mapped[str] = mapped_column(String(255))
    outgoing_port: Mapped[int]
    outgoing_security: Mapped[str] = mapped_column(String(10), default="starttls")
    smtp_auth: Mapped[str] = mapped_column(String(8), default="login")

    timeout: Mapped[int] = mapped_column(default=DEFAULT_TIMEOUT)
    tls_verify: Mapped[str] = mapped_column(String(8), default="system")
    ca_cert_pem: Mapped[str | None] = mapped_column(Text)
    fetch_count: Mapped[int] = mapped_column(default=DEFAULT_FETCH_COUNT)
    # "latest": the N newest (or oldest) messages; "replicate": every message of each folder, in batches.
    fetch_strategy: Mapped[str] = mapped_column(String(10), default="latest")
    fetch_order: Mapped[str] = mapped_column(String(6), default="newest")
    batch_size: Mapped[int] = mapped_column(default=DEFAULT_BATCH_SIZE)
    # The IMAP folders to fetch; ``folder`` is the first of them (POP3 has only INBOX).
    folders: Mapped[list[str]] = mapped_column(JSON, default=lambda: ["INBOX"])
    # Bigger messages are kept with their headers only, marked, never dropped. 0: no limit.
    max_message_size: Mapped[int] = mapped_column(default=DEFAULT_MAX_MESSAGE_SIZE)
    fetch_every_minutes: Mapped[int] = mapped_column(default=0)
    # What to do on the server after a message is stored: none | seen | move | delete (opt-in).
    after_fetch: Mapped[str] = mapped_column(String(6), default="none")
    after_fetch_folder: Mapped[str] = mapped_column(String(255), default="")
    sanitize_html: Mapped[bool] = mapped_column(default=True)
    # The outbox: attempts before a queued message is FAILED; SMTP connections used at once; a rate
    # limit for providers that throttle (0: none); a copy of each sent message in the server's Sent folder.
    max_send_attempts: Mapped[int] = mapped_column(default=DEFAULT_MAX_SEND_ATTEMPTS)
    send_connections: Mapped[int] = mapped_column(default=1)
    send_per_minute: Mapped[int] = mapped_column(default=0)
    append_to_sent: Mapped[bool] = mapped_column(default=False)
    # The last Test connection: when, and whether each server accepted the login (None: not tested).
    last_test_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_test_incoming_ok: Mapped[bool | None] = mapped_column()
    last_test_outgoing_ok: Mapped[bool | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    grants: Mapped[list[AccountGrant]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )

    @staticmethod
    def key_for(name: str) -> str:
        """The name compared for uniqueness: stripped and case-folded."""
        return name.strip().casefold()

    @property
    def receives(self) -> bool:
        """Does the account fetch mail? A send-only account (a local relay) has no incoming server."""
        return bool(self.incoming_host)

    @property
    def sends(self) -> bool:
        """Does the account send mail? A receive-only account (an archive) has no outgoing server."""
        return bool(self.outgoing_host)

    @property
    def is_shared(self) -> bool:
        """A shared mailbox, reached with its primary account's credentials."""
        return self.primary_account_id is not None

    @property
    def kind_label(self) -> str:
        """What the pages say the account does: "", "send-only", "receive-only", plus "shared"."""
        parts = ["shared"] if self.is_shared else []
        if not self.receives:
            parts.append("send-only")
        elif not self.sends:
            parts.append("receive-only")
        return ", ".join(parts)

    @property
    def microsoft_basic_auth(self) -> bool:
        """A password account on Microsoft 365 / Outlook.com servers, where Microsoft ends basic
        authentication (SMTP AUTH included): it should move to OAuth (docs/oauth.md)."""
        hosts = (self.incoming_host if self.receives else "", self.outgoing_host if self.sends else "")
        microsoft = any(h.lower().endswith((".office365.com", ".outlook.com")) for h in hosts if h)
        return microsoft and self.auth_method == "password"

    @property
    def main_folder(self) -> str:
        """The folder shown first and checked by Test connection: the first IMAP folder, INBOX for POP3."""
        return self.folder if self.incoming_protocol == "imap" else "INBOX"

    @property
    def fetch_folders(self) -> list[str]:
        """The folders a fetch reads: the configured IMAP folders, or INBOX for POP3."""
        if self.incoming_protocol != "imap":
            return ["INBOX"]
        return list(self.folders or [self.folder])

    @property
    def after_fetch_label(self) -> str:
        """The after-fetch action as settings write it: ``none``, ``seen``, ``delete`` or ``move:FOLDER``."""
        return f"move:{self.after_fetch_folder}" if self.after_fetch == "move" else self.after_fetch

    @property
    def incoming_scheme(self) -> str:
        """The incoming server's URL scheme, e.g. ``imaps`` or ``pop3+starttls``."""
        return _scheme(self.incoming_protocol, self.incoming_security)

    @property
    def outgoing_scheme(self) -> str:
        """The outgoing server's URL scheme: ``smtp``, ``smtp+starttls`` or ``smtps``."""
        return _scheme("smtp", self.outgoing_security)


def _scheme(protocol: str, security: str) -> str:
    return {"none": protocol, "starttls": f"{protocol}+starttls", "tls": f"{protocol}s"}[security]


class AccountGrant(Base):
    """A user's right to read and/or send from an account."""

    __tablename__ = "account_grant"
    __table_args__ = (UniqueConstraint("user_id", "account_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("email_account.id", ondelete="CASCADE"), index=True)
    can_read: Mapped[bool] = mapped_column(default=True)
    can_send: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship(back_populates="grants")
    account: Mapped[EmailAccount] = relationship(back_populates="grants")
