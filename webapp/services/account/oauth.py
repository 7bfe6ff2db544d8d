"""OAuth 2.0 providers (app registrations) and the tokens of accounts that sign in with one: msal does the
token work against the provider's authority (Microsoft's cloud, another cloud, or a server of one's own).

This version does the client-credentials flow (app-only tokens for IMAP, POP3 and SMTP with the mailbox as
the XOAUTH2 user); the authorization-code flow is refused in words until it is built (issue #15).
Failures are explained from the provider's AADSTS codes (``explain``), never a bare code.
"""

from __future__ import annotations

import functools
import hashlib
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msal
import requests
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webapp.adapters.errors import AuthError
from webapp.adapters.mail import network
from webapp.adapters.mime.linebreaks import has_line_break
from webapp.adapters.storage.secretbox import SecretBoxError
from webapp.database import writes
from webapp.extensions import db
from webapp.models import EmailAccount, OAuthProvider
from webapp.models.base import MAX_ID
from webapp.models.oauth import APP_ONLY_SCOPE, DEFAULT_AUTHORITY, FLOWS
from webapp.services.errors import Conflict, Invalid, NotFound
from webapp.services.platform import secretstore

# The provider's error codes an admin meets, in plain words (Microsoft's AADSTS numbers).
ADVICE = {
    7000215: "the client secret is wrong: copy the secret's *value* (not its ID) from the app registration",
    7000222: "the client secret has expired: create a new one in the app registration and enter it here",
    700016: "the application (client) ID is not known in this tenant: check the client ID and the tenant ID",
    90002: "the tenant is not known: check the tenant ID (or domain) of the directory",
    70011: "the scope is not valid for this flow",
    65001: "an administrator has not consented to the app's permissions yet: grant admin consent",
    50034: "the mailbox's user does not exist in this tenant",
    7000112: "the application is disabled in the tenant",
}


@dataclass
class ProviderSettings:
    """What an admin sets on an OAuth provider; ``client_secret=None`` keeps the stored one."""

    name: str
    flow: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    tenant_id: str = "organizations"
    authority: str = DEFAULT_AUTHORITY
    callback_path: str = ""
    ca_cert_pem: str | None = None


def validate(settings: ProviderSettings) -> None:
    """Invalid naming the first wrong field."""
    name = settings.name.strip()
    if not name or len(name) > 100 or any(ord(c) < 32 for c in name):
        raise Invalid("name: 1 to 100 characters, no control characters")
    if settings.flow not in FLOWS:
        raise Invalid("flow: client_credentials or authorization_code")
    for label, value, longest in (
        ("client ID", settings.client_id, 200),
        ("tenant ID", settings.tenant_id, 200),
        ("callback path", settings.callback_path, 200),
    ):
        if has_line_break(value) or len(value.strip()) > longest:
            raise Invalid(f"{label}: at most {longest} characters, no line breaks")
    if not settings.client_id.strip():
        raise Invalid("client ID: required")
    if not re.fullmatch(r"[A-Za-z0-9.-]+", settings.tenant_id.strip()):
        raise Invalid("tenant ID: a directory's ID or domain (letters, digits, '.', '-')")
    authority = settings.authority.strip().rstrip("/")
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~-]+)*", authority):
        raise Invalid(f"authority: an https:// address such as {DEFAULT_AUTHORITY}")
    if settings.client_secret is not None and (not settings.client_secret or has_line_break(settings.client_secret)):
        raise Invalid("client secret: required, on one line")
    if settings.ca_cert_pem and (problem := network.ca_problem(settings.ca_cert_pem)):
        raise Invalid(f"CA certificate: {problem}")


def all_providers() -> list[OAuthProvider]:
    """Every provider, by name."""
    return list(db.session.scalars(select(OAuthProvider).order_by(OAuthProvider.name_key)))


def find(name: str) -> OAuthProvider | None:
    """The provider named ``name`` (regardless of case), or None."""
    key = OAuthProvider.key_for(name)
    return db.session.scalar(select(OAuthProvider).where(OAuthProvider.name_key == key))


def get(name: str) -> OAuthProvider:
    """The provider named ``name``; NotFound when there is none."""
    provider = find(name)
    if provider is None:
        raise NotFound(f"no OAuth provider named {name!r}")
    return provider


def by_id(provider_id: int) -> OAuthProvider:
    """The provider with id ``provider_id``; NotFound when there is none."""
    provider = db.session.get(OAuthProvider, provider_id) if 0 < provider_id <= MAX_ID else None
    if provider is None:
        raise NotFound(f"no OAuth provider with id {provider_id}")
    return provider


@writes
def create(settings: ProviderSettings) -> OAuthProvider:
    """Add a provider; its name must be unique regardless of case, its secret is encrypted at rest."""
    validate(settings)
    if settings.client_secret is None:
        raise Invalid("client secret: required")
    provider = OAuthProvider(
        name=settings.name.strip(),
        name_key=OAuthProvider.key_for(settings.name),
        flow=settings.flow,
        client_id=settings.client_id.strip(),
        client_secret_encrypted=secretstore.encrypt(settings.client_secret),
        tenant_id=settings.tenant_id.strip(),
        authority=settings.authority.strip().rstrip("/"),
        callback_path=settings.callback_path.strip().strip("/"),
        ca_cert_pem=settings.ca_cert_pem or None,
    )
    db.session.add(provider)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict(f"an OAuth provider named {settings.name.strip()!r} already exists") from None
    return provider


def provider_of(account: EmailAccount) -> OAuthProvider | None:
    """The provider an OAuth account signs in with (None for a password account)."""
    if account.auth_method != "oauth" or account.oauth_provider_id is None:
        return None
    return db.session.get(OAuthProvider, account.oauth_provider_id)


def users_of(provider: OAuthProvider) -> list[EmailAccount]:
    """The accounts that sign in with ``provider``."""
    query = select(EmailAccount).where(EmailAccount.oauth_provider_id == provider.id)
    return list(db.session.scalars(query.order_by(EmailAccount.name_key)))


@writes
def remove(provider: OAuthProvider) -> None:
    """Remove a provider no account signs in with (Conflict naming them otherwise)."""
    used = db.session.scalar(select(func.count(EmailAccount.id)).where(EmailAccount.oauth_provider_id == provider.id))
    if used:
        names = ", ".join(account.name for account in users_of(provider))
        db.session.rollback()
        raise Conflict(f"{provider.name} signs in {names}: change or remove those accounts first")
    db.session.delete(provider)
    db.session.commit()


def access_token(account: EmailAccount) -> str:
    """A valid access token for the account's mailbox (from the account's token cache while it lasts);
    AuthError in plain words when the provider refuses."""
    if account.oauth_provider_id is None:
        raise AuthError("the account signs in with OAuth but has no OAuth provider; an admin must choose one")
    try:
        provider = by_id(account.oauth_provider_id)
    except NotFound:
        raise AuthError("the account's OAuth provider is gone; an admin must choose another") from None
    if provider.flow != "client_credentials":
        raise AuthError(
            f"{provider.name} uses the authorization-code flow, which this version cannot do yet: "
            "use a client-credentials provider"
        )
    cache = msal.SerializableTokenCache()
    if account.oauth_token_cache_encrypted:
        try:
            cache.deserialize(secretstore.decrypt(account.oauth_token_cache_encrypted))
        except (SecretBoxError, ValueError):
            pass  # an unreadable cache is only a cache: a new token is asked for
    try:
        secret = secretstore.decrypt(provider.client_secret_encrypted)
    except SecretBoxError:
        raise AuthError(
            f"the client secret of {provider.name} cannot be decrypted with the configured keys; enter it again"
        ) from None
    try:
        application = msal.ConfidentialClientApplication(
            provider.client_id,
            client_credential=secret,
            authority=f"{provider.authority}/{provider.tenant_id}",
            # Another cloud or a server of one's own is not in Microsoft's instance list: its metadata is read.
            instance_discovery=None if provider.authority == DEFAULT_AUTHORITY else False,
            token_cache=cache,
            http_client=_http_client(provider.ca_cert_pem, float(account.timeout)),
        )
        result: dict[str, Any] = application.acquire_token_for_client(scopes=[APP_ONLY_SCOPE])
    except Exception as exc:  # noqa: BLE001 - msal raises ValueError, requests errors and more: all in words
        raise AuthError(f"OAuth: {provider.name} could not be asked for a token: {_short(exc)}") from None
    token = result.get("access_token")
    if not token:
        raise AuthError(f"OAuth: {provider.name} refused a token: {explain(result)}")
    if cache.has_state_changed:
        _save_cache(account.id, secretstore.encrypt(cache.serialize()))
    return str(token)


def explain(result: dict[str, Any]) -> str:
    """The provider's refusal as advice: the AADSTS code's meaning, else its description's first line."""
    codes = [int(code) for code in result.get("error_codes") or [] if str(code).isdigit()]
    description = str(result.get("error_description") or result.get("error") or "no reason given")
    codes += [int(code) for code in re.findall(r"AADSTS(\d+)", description)]
    for code in codes:
        if code in ADVICE:
            return f"{ADVICE[code]} (AADSTS{code})"
    return description.splitlines()[0][:300]


@writes
def _save_cache(account_id: int | None, blob: str) -> None:
    if account_id is None:
        return  # an account not saved yet (Test before Save): its token is not kept
    account = db.session.get(EmailAccount, account_id)
    if account is not None:
        account.oauth_token_cache_encrypted = blob
        db.session.commit()


class _Session(requests.Session):
    """requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment win over a session's own CA
    (psf/requests#3829): a provider's CA must be the one used. Proxies from the environment still apply."""

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        settings["verify"] = self.verify
        return settings


def _http_client(pem: str | None, timeout: float) -> requests.Session:
    session = _Session() if pem else requests.Session()
    session.verify = _ca_file(pem) or True
    session.request = functools.partial(session.request, timeout=timeout)  # type: ignore[method-assign]
    return session


def _ca_file(pem: str | None) -> str | None:
    """msal (requests) takes a CA bundle as a file: one per distinct certificate, written once."""
    if not pem:
        return None
    path = Path(tempfile.gettempdir()) / f"email-connector-ca-{hashlib.sha256(pem.encode()).hexdigest()[:16]}.pem"
    if not path.exists():
        path.write_text(pem)
    return str(path)


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:300]
