"""Mail accounts: adding, changing, listing and removing them, with their passwords encrypted."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.adapters.errors import AuthError
from webapp.adapters.mail.auth import PasswordAuth
from webapp.adapters.mail.endpoint import DEFAULT_PORTS, Endpoint, TlsPolicy
from webapp.adapters.mime import addresses
from webapp.adapters.mime.linebreaks import has_line_break
from webapp.adapters.storage.secretbox import SecretBoxError
from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount
from webapp.models.account import (
    AFTER_FETCH,
    DEFAULT_BATCH_SIZE,
    DEFAULT_FETCH_COUNT,
    DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_MAX_SEND_ATTEMPTS,
    DEFAULT_TIMEOUT,
    FETCH_ORDERS,
    FETCH_STRATEGIES,
    INCOMING_PROTOCOLS,
    MAX_BATCH_SIZE,
    MAX_FETCH_COUNT,
    MAX_FETCH_EVERY_MINUTES,
    MAX_MESSAGE_SIZE,
    MAX_SEND_ATTEMPTS,
    MAX_SEND_CONNECTIONS,
    MAX_SEND_PER_MINUTE,
    MAX_TIMEOUT,
    SECURITIES,
    SMTP_AUTH_MODES,
    TLS_VERIFY_MODES,
)
from webapp.models.base import MAX_ID
from webapp.services.errors import Conflict, Invalid, NotFound
from webapp.services.platform import blobs, secretstore


@dataclass
class AccountSettings:
    """Everything an admin sets on an account. ``password=None`` keeps the stored one."""

    name: str
    address: str
    username: str
    incoming_protocol: str
    incoming_security: str
    incoming_host: str
    incoming_port: int
    outgoing_host: str
    outgoing_port: int
    outgoing_security: str
    password: str | None = field(default=None, repr=False)
    display_name: str = ""
    folder: str = "INBOX"
    smtp_auth: str = "login"
    timeout: int = DEFAULT_TIMEOUT
    tls_verify: str = "system"
    ca_cert_pem: str | None = None
    fetch_count: int = DEFAULT_FETCH_COUNT
    sanitize_html: bool = True
    fetch_strategy: str = "latest"
    fetch_order: str = "newest"
    batch_size: int = DEFAULT_BATCH_SIZE
    folders: list[str] = field(default_factory=list)  # empty: [folder]
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    fetch_every_minutes: int = 0
    after_fetch: str = "none"
    after_fetch_folder: str = ""
    max_send_attempts: int = DEFAULT_MAX_SEND_ATTEMPTS
    send_connections: int = 1
    send_per_minute: int = 0
    append_to_sent: bool = False


def default_port(protocol: str, security: str) -> int:
    """The usual port for a protocol and security (143, 993, 110, 995, 25, 587, 465)."""
    return DEFAULT_PORTS[(protocol, security)]


def validate(settings: AccountSettings) -> None:
    """Raise Invalid naming the first wrong field."""
    name = settings.name.strip()
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise Invalid("name: 1 to 100 characters, no control characters")
    # The same rules as for recipients (webapp/adapters/mime/addresses.py): dotless domains such as
    # dev@localhost and internationalised domains are accepted, names and lists are not.
    try:
        addresses.check_address(settings.address.strip())
    except addresses.AddressError as exc:
        raise Invalid(f"address: {settings.address!r} is not an email address ({exc})") from None
    for label, value, longest in (
        ("display name", settings.display_name, 200),
        ("username", settings.username, 320),
        ("incoming host", settings.incoming_host, 255),
        ("outgoing host", settings.outgoing_host, 255),
        ("folder", settings.folder, 255),
    ):
        if has_line_break(value):
            raise Invalid(f"{label}: line breaks and NUL are not allowed")
        if len(value.strip()) > longest:  # the column's length: a database would refuse it less kindly
            raise Invalid(f"{label}: at most {longest} characters")
    if not settings.username.strip():
        raise Invalid("username: required")
    for label, host in (("incoming host", settings.incoming_host), ("outgoing host", settings.outgoing_host)):
        if not host.strip() or " " in host.strip():
            raise Invalid(f"{label}: required, without spaces")
    for label, port in (("incoming port", settings.incoming_port), ("outgoing port", settings.outgoing_port)):
        if not 1 <= port <= 65535:
            raise Invalid(f"{label}: 1 to 65535")
    if settings.incoming_protocol not in INCOMING_PROTOCOLS:
        raise Invalid("incoming protocol: imap or pop3")
    if settings.incoming_security not in SECURITIES or settings.outgoing_security not in SECURITIES:
        raise Invalid("security: none, starttls or tls")
    if settings.smtp_auth not in SMTP_AUTH_MODES:
        raise Invalid("SMTP authentication: login or none")
    if settings.tls_verify not in TLS_VERIFY_MODES:
        raise Invalid("TLS verification: system, custom or off")
    if settings.tls_verify == "custom" and not (settings.ca_cert_pem or "").strip():
        raise Invalid("CA certificate: required when verifying with a custom CA")
    if settings.tls_verify == "custom" and "-----BEGIN CERTIFICATE-----" not in (settings.ca_cert_pem or ""):
        raise Invalid("CA certificate: paste a PEM certificate (-----BEGIN CERTIFICATE-----)")
    if not 1 <= settings.timeout <= MAX_TIMEOUT:
        raise Invalid(f"timeout: 1 to {MAX_TIMEOUT} seconds")
    if not 1 <= settings.fetch_count <= MAX_FETCH_COUNT:
        raise Invalid(f"number of emails to retrieve: 1 to {MAX_FETCH_COUNT}")
    if settings.incoming_protocol == "imap" and not settings.folder.strip():
        raise Invalid("folder: required for IMAP")
    _validate_fetching(settings)


def _validate_fetching(settings: AccountSettings) -> None:
    if settings.fetch_strategy not in FETCH_STRATEGIES:
        raise Invalid("strategy: latest or replicate")
    if settings.fetch_order not in FETCH_ORDERS:
        raise Invalid("order: newest or oldest")
    if not 1 <= settings.batch_size <= MAX_BATCH_SIZE:
        raise Invalid(f"batch size: 1 to {MAX_BATCH_SIZE}")
    for name in settings.folders:
        if not name.strip() or len(name) > 255 or has_line_break(name):
            raise Invalid(f"folders: {name!r} is not a folder name (1 to 255 characters, no line breaks)")
    if not 0 <= settings.max_message_size <= MAX_MESSAGE_SIZE:
        raise Invalid(f"maximum message size: 0 (no limit) to {MAX_MESSAGE_SIZE} bytes")
    if not 0 <= settings.fetch_every_minutes <= MAX_FETCH_EVERY_MINUTES:
        raise Invalid(f"fetch every: 0 (never) to {MAX_FETCH_EVERY_MINUTES} minutes")
    if not 1 <= settings.max_send_attempts <= MAX_SEND_ATTEMPTS:
        raise Invalid(f"max. send attempts: 1 to {MAX_SEND_ATTEMPTS}")
    if not 1 <= settings.send_connections <= MAX_SEND_CONNECTIONS:
        raise Invalid(f"SMTP connections at once: 1 to {MAX_SEND_CONNECTIONS}")
    if not 0 <= settings.send_per_minute <= MAX_SEND_PER_MINUTE:
        raise Invalid(f"messages per minute: 0 (no limit) to {MAX_SEND_PER_MINUTE}")
    if settings.after_fetch not in AFTER_FETCH:
        raise Invalid("after fetch: none, seen, move:FOLDER or delete")
    if settings.after_fetch == "move":
        target = settings.after_fetch_folder
        if not target.strip() or len(target) > 255 or has_line_break(target):
            raise Invalid("after fetch: move needs a folder name (no line breaks)")
    if settings.incoming_protocol == "pop3" and settings.after_fetch in ("seen", "move"):
        raise Invalid("after fetch: POP3 can only leave messages on the server (none) or delete them")


def find(name: str) -> EmailAccount | None:
    """The account named ``name`` (regardless of case), or None."""
    return db.session.scalar(select(EmailAccount).where(EmailAccount.name_key == EmailAccount.key_for(name)))


def get(name: str) -> EmailAccount:
    """The account named ``name`` (regardless of case); NotFound when there is none."""
    account = find(name)
    if account is None:
        raise NotFound(f"no account named {name!r}")
    return account


def by_id(account_id: int) -> EmailAccount:
    """The account with id ``account_id``; NotFound when there is none (out-of-range ids included)."""
    account = db.session.get(EmailAccount, account_id) if 0 < account_id <= MAX_ID else None
    if account is None:
        raise NotFound(f"no account with id {account_id}")
    return account


def all_accounts() -> list[EmailAccount]:
    """Every account, ordered by name."""
    return list(db.session.scalars(select(EmailAccount).order_by(EmailAccount.name_key)))


def create(settings: AccountSettings) -> EmailAccount:
    """Add an account; its name must be unique regardless of case."""
    if settings.password is None:
        raise Invalid("password: required")
    return _save(EmailAccount(), settings)


def update(account: EmailAccount, settings: AccountSettings) -> EmailAccount:
    """Save new settings of ``account``, validated; the password changes only when one is given."""
    return _save(account, settings)


def settings_of(account: EmailAccount) -> AccountSettings:
    """The editable settings of an account, without its password."""
    values = {f.name: getattr(account, f.name) for f in fields(AccountSettings) if f.name != "password"}
    values["folders"] = list(account.folders or [account.folder])
    return AccountSettings(**values)


@writes
def _save(account: EmailAccount, settings: AccountSettings) -> EmailAccount:
    validate(settings)
    name = settings.name.strip()
    other = find(name)
    if other is not None and other is not account:
        db.session.rollback()
        raise Conflict(f"an account named {name!r} already exists")
    for f in fields(AccountSettings):
        if f.name != "password":
            value = getattr(settings, f.name)
            setattr(
                account,
                f.name,
                value.strip() if isinstance(value, str) and f.name != "ca_cert_pem" else value,
            )
    if settings.tls_verify != "custom":
        account.ca_cert_pem = None
    if settings.incoming_protocol == "pop3":
        account.folder = "INBOX"
        account.folders = ["INBOX"]
    else:
        # The first folder is the account's main one (shown first, checked by Test connection).
        account.folders = list(dict.fromkeys(f.strip() for f in settings.folders if f.strip())) or [account.folder]
        account.folder = account.folders[0]
    if settings.after_fetch != "move":
        account.after_fetch_folder = ""
    account.name_key = EmailAccount.key_for(name)
    if settings.password is not None:
        account.password_encrypted = secretstore.encrypt(settings.password)
    db.session.add(account)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"an account named {name!r} already exists") from None
    return account


def remove(account: EmailAccount) -> None:
    """Remove an account with everything stored for it: messages, their bytes (unless another message has
    the same), grants, logs, webhooks, history."""
    _delete(account)
    blobs.collect_garbage()  # bytes used within the grace period go with the next sweep (schedule)


@writes
def _delete(account: EmailAccount) -> None:
    db.session.delete(account)
    db.session.commit()


def auth(account: EmailAccount) -> PasswordAuth:
    """The login for the account's servers; AuthError when no usable password is stored."""
    if not account.password_encrypted:
        raise AuthError("the account has no password stored; an admin must set it")
    try:
        return PasswordAuth(account.username, secretstore.decrypt(account.password_encrypted))
    except SecretBoxError:
        raise AuthError(
            "the account's password cannot be decrypted with the configured encryption keys; "
            "restore the keys or set the password again"
        ) from None


def tls_policy(account: EmailAccount) -> TlsPolicy:
    """How the account's servers' certificates are checked: system CAs, its own CA (custom), or not at all."""
    return TlsPolicy(
        verify=account.tls_verify != "off",
        ca_pem=account.ca_cert_pem if account.tls_verify == "custom" else None,
    )


def incoming_endpoint(account: EmailAccount) -> Endpoint:
    """Where the account fetches from: its IMAP server (with the main folder) or POP3 server."""
    return Endpoint(
        protocol=account.incoming_protocol,
        security=account.incoming_security,
        host=account.incoming_host,
        port=account.incoming_port,
        folder=account.main_folder if account.incoming_protocol == "imap" else "",
        timeout=float(account.timeout),
        tls=tls_policy(account),
    )


def outgoing_endpoint(account: EmailAccount) -> Endpoint:
    """Where the account sends through: its SMTP server."""
    return Endpoint(
        protocol="smtp",
        security=account.outgoing_security,
        host=account.outgoing_host,
        port=account.outgoing_port,
        timeout=float(account.timeout),
        tls=tls_policy(account),
    )
