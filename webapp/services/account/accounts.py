"""Mail accounts: adding, changing, listing and removing them, with their passwords encrypted."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.adapters.errors import AuthError
from webapp.adapters.mail import network
from webapp.adapters.mail.auth import Auth, PasswordAuth, XOAuth2Auth
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
    LOGIN_FORMATS,
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
from webapp.services.account import oauth
from webapp.services.errors import Conflict, Invalid, NotFound
from webapp.services.platform import blobs, secretstore

# How a shared mailbox's login joins the primary's (Exchange: primary\shared; Dovecot: shared*primary).
LOGIN_SEPARATORS = {"exchange": "\\", "dovecot": "*"}


@dataclass
class AccountSettings:
    """Everything an admin sets on an account. ``password=None`` keeps the stored one.

    An empty ``incoming_host`` makes a send-only account, an empty ``outgoing_host`` a receive-only one.
    A shared mailbox has a ``primary_account_id`` and no password of its own: ``username`` is the shared
    mailbox's login name, combined with the primary's login as ``login_format`` says.
    """

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
    primary_account_id: int | None = None
    login_format: str = "plain"
    auth_method: str = "password"  # or "oauth": XOAUTH2 with tokens of oauth_provider_id
    oauth_provider_id: int | None = None

    @property
    def receives(self) -> bool:
        """An incoming server is set."""
        return bool(self.incoming_host.strip())

    @property
    def sends(self) -> bool:
        """An outgoing server is set."""
        return bool(self.outgoing_host.strip())


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
    if not settings.receives and not settings.sends:
        raise Invalid("servers: an account needs an incoming server, an outgoing server, or both")
    for label, host, port, used in (
        ("incoming", settings.incoming_host, settings.incoming_port, settings.receives),
        ("outgoing", settings.outgoing_host, settings.outgoing_port, settings.sends),
    ):
        if used and " " in host.strip():
            raise Invalid(f"{label} host: no spaces")
        if used and not 1 <= port <= 65535:
            raise Invalid(f"{label} port: 1 to 65535")
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
    if settings.tls_verify == "custom" and (problem := network.ca_problem(normal_pem(settings.ca_cert_pem) or "")):
        raise Invalid(f"CA certificate: {problem}")
    if not 1 <= settings.timeout <= MAX_TIMEOUT:
        raise Invalid(f"timeout: 1 to {MAX_TIMEOUT} seconds")
    if not 1 <= settings.fetch_count <= MAX_FETCH_COUNT:
        raise Invalid(f"number of emails to retrieve: 1 to {MAX_FETCH_COUNT}")
    if settings.receives and settings.incoming_protocol == "imap" and not settings.folder.strip():
        raise Invalid("folder: required for IMAP")
    if settings.fetch_every_minutes and not settings.receives:
        raise Invalid("fetch every: a send-only account has nothing to fetch (leave it at 0)")
    if settings.append_to_sent and not (settings.receives and settings.incoming_protocol == "imap"):
        raise Invalid("copy to Sent: needs an IMAP incoming server")
    if settings.login_format not in LOGIN_FORMATS:
        raise Invalid("login format: plain, exchange or dovecot")
    if settings.auth_method not in ("password", "oauth"):
        raise Invalid("sign-in: password or oauth")
    if settings.auth_method == "oauth" and settings.oauth_provider_id is None:
        raise Invalid("OAuth provider: required to sign in with OAuth")
    # The separator of the login form inside the shared mailbox's own name would make the login ambiguous.
    separator = LOGIN_SEPARATORS.get(settings.login_format)
    if settings.primary_account_id is not None and separator and separator in settings.username:
        raise Invalid(
            f"username: {separator!r} cannot be in a shared mailbox's login name in the {settings.login_format} form"
        )
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


def unsaved(settings: AccountSettings, stored: EmailAccount | None = None) -> EmailAccount:
    """An account made of ``settings`` that is not saved (never added to the session), to test or list
    folders with before Save; without a password in ``settings`` the stored account's is used."""
    validate(settings)
    draft = EmailAccount()
    _copy_settings(draft, settings)
    draft.name = draft.name or "new account"
    if settings.receives and settings.incoming_protocol == "imap":
        draft.folder = next((name for name in settings.folders if name.strip()), settings.folder.strip())
    if settings.primary_account_id is not None:
        _check_shared_servers(settings, _primary_for(settings))
    if settings.password is not None:
        draft.password_encrypted = secretstore.encrypt(settings.password)
    elif stored is not None:
        _check_password_destination(stored, settings)
        draft.password_encrypted = stored.password_encrypted
    elif needs_password(settings):
        raise Invalid("password: required")
    return draft


# Where a stored password goes: a change of any of these needs the password typed again, so that nobody
# can send a stored password to a server of their choice by editing the host (Thunderbird files saved
# passwords under their server for the same reason).
_INCOMING_DESTINATION = ("incoming_protocol", "incoming_security", "incoming_host", "incoming_port")
_OUTGOING_DESTINATION = ("outgoing_security", "outgoing_host", "outgoing_port", "smtp_auth")
_TLS_DESTINATION = ("tls_verify", "ca_cert_pem")
PASSWORD_AGAIN = (
    "password: type it again — the servers or their certificates changed, and a stored password only goes "
    "to the servers it was saved for"
)


def _check_password_destination(account: EmailAccount, settings: AccountSettings) -> None:
    """Invalid when ``settings`` without a password would send the stored one somewhere new."""
    if settings.password is not None or not account.password_encrypted or account.is_shared:
        return
    if settings.primary_account_id is not None:
        return  # a shared mailbox uses its primary's password, on the primary's servers (checked)
    names = (
        (_INCOMING_DESTINATION if settings.receives else ())
        + (_OUTGOING_DESTINATION if settings.sends and settings.smtp_auth == "login" else ())
        + _TLS_DESTINATION
    )
    if _differs(account, settings, names):
        raise Invalid(PASSWORD_AGAIN)


def _primary_for(settings: AccountSettings) -> EmailAccount:
    try:
        return by_id(settings.primary_account_id or 0)
    except NotFound:
        raise Invalid("primary account: no such account") from None


def _check_shared_servers(settings: AccountSettings, primary: EmailAccount) -> None:
    """A shared mailbox logs in with its primary's password: only on the primary's servers, checking their
    certificates as the primary does (else the password could be sent anywhere)."""
    for side, used, host, port in (
        ("incoming", settings.receives, settings.incoming_host.strip(), settings.incoming_port),
        ("outgoing", settings.sends, settings.outgoing_host.strip(), settings.outgoing_port),
    ):
        theirs = (getattr(primary, f"{side}_host"), getattr(primary, f"{side}_port"))
        if used and (host, port) != theirs:
            where = f"{theirs[0]}:{theirs[1]}" if theirs[0] else "none"
            raise Invalid(f"{side} server: a shared mailbox uses its primary account's ({where})")
    pem = normal_pem(settings.ca_cert_pem) if settings.tls_verify == "custom" else None
    if (settings.tls_verify, pem) != (primary.tls_verify, normal_pem(primary.ca_cert_pem)):
        raise Invalid("certificates: a shared mailbox checks them as its primary account does")


def server_settings_changed(account: EmailAccount, settings: AccountSettings) -> bool:
    """Would ``settings`` change how the account reaches its servers (worth a test before saving)?"""
    return settings.password is not None or _differs(account, settings, _SERVER_FIELDS)


def _differs(account: EmailAccount, settings: AccountSettings, names: tuple[str, ...]) -> bool:
    """Do ``settings`` differ from the account's in any of ``names`` (the CA compared as it is stored)?"""
    before = replace(settings_of(account), ca_cert_pem=normal_pem(account.ca_cert_pem))
    after = replace(settings, ca_cert_pem=normal_pem(settings.ca_cert_pem) if settings.tls_verify == "custom" else None)
    return any(getattr(before, name) != getattr(after, name) for name in names)


MAX_CA_BYTES = 64 * 1024


def ca_from_upload(data: bytes) -> str:
    """An uploaded CA certificate's PEM text (read at most ``MAX_CA_BYTES + 1`` bytes of it); Invalid
    when it is too big, not PEM, or not ASCII."""
    if len(data) > MAX_CA_BYTES or b"-----BEGIN CERTIFICATE-----" not in data:
        raise Invalid("CA certificate: upload a PEM file (-----BEGIN CERTIFICATE-----), at most 64 KiB")
    try:
        return data.decode("ascii")
    except UnicodeDecodeError:
        raise Invalid("CA certificate: a PEM file is plain ASCII text") from None


def normal_pem(pem: str | None) -> str | None:
    """A pasted or uploaded PEM as stored: LF line ends (a browser posts CRLF), one final newline."""
    text = (pem or "").replace("\r\n", "\n").replace("\r", "\n").strip()
    return text + "\n" if text else None


_SERVER_FIELDS = (
    "address",
    "username",
    "incoming_protocol",
    "incoming_security",
    "incoming_host",
    "incoming_port",
    "outgoing_host",
    "outgoing_port",
    "outgoing_security",
    "smtp_auth",
    "tls_verify",
    "ca_cert_pem",
    "primary_account_id",
    "login_format",
)


def needs_password(settings: AccountSettings) -> bool:
    """Does the account need a password of its own? Every login does, but a shared mailbox (its primary's),
    an OAuth sign-in (tokens) and a send-only account on a relay without authentication (no login)."""
    logs_in = settings.receives or settings.smtp_auth == "login"
    return settings.auth_method == "password" and settings.primary_account_id is None and logs_in


def shared_of(account: EmailAccount) -> list[EmailAccount]:
    """The shared mailboxes that log in with ``account``'s credentials, by name."""
    query = select(EmailAccount).where(EmailAccount.primary_account_id == account.id)
    return list(db.session.scalars(query.order_by(EmailAccount.name_key)))


def primary_of(account: EmailAccount) -> EmailAccount | None:
    """The primary account of a shared mailbox (None for any other account, or when it is gone)."""
    return db.session.get(EmailAccount, account.primary_account_id) if account.is_shared else None


def primaries() -> list[EmailAccount]:
    """The accounts a shared mailbox can be reached through: not shared themselves, with a password (a
    relay without login has none to lend)."""
    return [account for account in all_accounts() if not account.is_shared and account.password_encrypted]


def create(settings: AccountSettings) -> EmailAccount:
    """Add an account; its name must be unique regardless of case."""
    if settings.password is None and needs_password(settings):
        raise Invalid("password: required")
    return _save(EmailAccount(), settings)


def update(account: EmailAccount, settings: AccountSettings) -> EmailAccount:
    """Save new settings of ``account``, validated; the password changes only when one is given."""
    return _save(account, settings)


def _copy_settings(account: EmailAccount, settings: AccountSettings) -> None:
    """Every setting but the password onto ``account`` (texts stripped, but the CA's PEM)."""
    for f in fields(AccountSettings):
        if f.name != "password":
            value = getattr(settings, f.name)
            setattr(account, f.name, value.strip() if isinstance(value, str) and f.name != "ca_cert_pem" else value)


def settings_of(account: EmailAccount) -> AccountSettings:
    """The editable settings of an account, without its password."""
    values = {f.name: getattr(account, f.name) for f in fields(AccountSettings) if f.name != "password"}
    values["folders"] = list(account.folders or [account.folder])
    return AccountSettings(**values)


def _check_primary(account: EmailAccount, settings: AccountSettings) -> None:
    if settings.primary_account_id is None:
        if account.is_shared and settings.password is None:
            raise Invalid("password: required for an account that is no longer shared")
        return
    primary = _primary_for(settings)
    if primary.id == account.id:
        raise Invalid("primary account: a shared mailbox cannot be its own primary account")
    if primary.is_shared:
        raise Invalid(f"primary account: {primary.name} is itself a shared mailbox; choose its primary account")
    if not primary.password_encrypted:
        raise Invalid(f"primary account: {primary.name} has no password to log in with (a relay without login)")
    if account.id is not None and shared_of(account):
        raise Invalid(f"primary account: {account.name} is the primary account of shared mailboxes")
    _check_shared_servers(settings, primary)


@writes
def _save(account: EmailAccount, settings: AccountSettings) -> EmailAccount:
    validate(settings)
    _check_primary(account, settings)
    if account.id is not None:
        _check_password_destination(account, settings)
    previous_provider = account.oauth_provider_id
    name = settings.name.strip()
    other = find(name)
    if other is not None and other is not account:
        db.session.rollback()
        raise Conflict(f"an account named {name!r} already exists")
    _copy_settings(account, settings)
    account.ca_cert_pem = normal_pem(settings.ca_cert_pem) if settings.tls_verify == "custom" else None
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
    if previous_provider != settings.oauth_provider_id or settings.auth_method != "oauth":
        account.oauth_token_cache_encrypted = None  # tokens of another provider (or none) are no use
    if settings.auth_method == "oauth":
        account.password_encrypted = None  # signs in with tokens
    elif settings.primary_account_id is not None:
        account.password_encrypted = None  # the primary's is used: one password to change, not two
    elif settings.password is not None:
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
    the same), grants, logs, webhooks, history. A primary account of shared mailboxes is refused."""
    shared = shared_of(account)
    if shared:
        names = ", ".join(other.name for other in shared)
        raise Conflict(f"{account.name} is the primary account of {names}: remove or change those first")
    _delete(account)
    blobs.collect_garbage()  # bytes used within the grace period go with the next sweep (schedule)


@writes
def _delete(account: EmailAccount) -> None:
    db.session.delete(account)
    db.session.commit()


def incoming_auth(account: EmailAccount) -> Auth:
    """The login for the account's incoming server (IMAP, POP3; also the Sent copy); AuthError when no
    usable password is stored. A shared mailbox logs in with its primary's password, as its login format
    says; an OAuth account with a token for its mailbox (SASL XOAUTH2)."""
    if account.auth_method == "oauth":
        return _token_auth(account)
    if not account.is_shared:
        return PasswordAuth(account.username, _password(account))
    primary = _primary(account)
    return PasswordAuth(shared_login(account.login_format, primary.username, account.username), _password(primary))


def outgoing_auth(account: EmailAccount) -> Auth | None:
    """The SMTP login, or None for a relay without authentication. A shared mailbox sends as its own
    address, authenticated as its primary account (SMTP has no shared-mailbox login form)."""
    if account.smtp_auth != "login":
        return None
    if account.auth_method == "oauth":
        return _token_auth(account)
    if not account.is_shared:
        return PasswordAuth(account.username, _password(account))
    primary = _primary(account)
    return PasswordAuth(primary.username, _password(primary))


def _token_auth(account: EmailAccount) -> XOAuth2Auth:
    token = oauth.access_token(account)  # asked for here, in the caller's context (the database is there)
    return XOAuth2Auth(account.username, lambda: token)


def shared_login(login_format: str, primary_login: str, shared_login: str) -> str:
    """The login name of a shared mailbox: Exchange ``primary@domain\\shared``, Dovecot master users
    ``shared*primary``, or the primary's own login (``plain``: the shared folders are in its namespace)."""
    if login_format == "exchange":
        return f"{primary_login}{LOGIN_SEPARATORS['exchange']}{shared_login}"
    if login_format == "dovecot":
        return f"{shared_login}{LOGIN_SEPARATORS['dovecot']}{primary_login}"
    return primary_login


def _primary(account: EmailAccount) -> EmailAccount:
    primary = primary_of(account)
    if primary is None:
        raise AuthError("the shared mailbox's primary account is gone; an admin must choose another")
    return primary


def _password(account: EmailAccount) -> str:
    if not account.password_encrypted:
        raise AuthError(f"the account {account.name} has no password stored; an admin must set it")
    try:
        return secretstore.decrypt(account.password_encrypted)
    except SecretBoxError:
        raise AuthError(
            "the account's password cannot be decrypted with the configured encryption keys; "
            "restore the keys or set the password again"
        ) from None


def require_receiving(account: EmailAccount) -> None:
    """Invalid unless the account has an incoming server (a send-only account fetches nothing)."""
    if not account.receives:
        raise Invalid(f"account {account.name} is send-only: it has no incoming server to fetch from")


def require_sending(account: EmailAccount) -> None:
    """Invalid unless the account has an outgoing server (a receive-only account sends nothing)."""
    if not account.sends:
        raise Invalid(f"account {account.name} is receive-only: it has no outgoing server to send through")


def tls_policy(account: EmailAccount) -> TlsPolicy:
    """How the account's servers' certificates are checked: system CAs, its own CA (custom), or not at all."""
    return TlsPolicy(
        verify=account.tls_verify != "off",
        ca_pem=account.ca_cert_pem if account.tls_verify == "custom" else None,
    )


def incoming_endpoint(account: EmailAccount) -> Endpoint:
    """Where the account fetches from: its IMAP server (with the main folder) or POP3 server."""
    require_receiving(account)
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
    require_sending(account)
    return Endpoint(
        protocol="smtp",
        security=account.outgoing_security,
        host=account.outgoing_host,
        port=account.outgoing_port,
        timeout=float(account.timeout),
        tls=tls_policy(account),
    )
