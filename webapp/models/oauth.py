"""OAuth 2.0 providers (Mendix's OAuth configurations): an app registration that accounts sign in with."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base, UTCDateTime, utcnow

FLOWS = ("client_credentials", "authorization_code")
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"  # Microsoft's public cloud
# What a mailbox needs for IMAP, POP3 and SMTP with an app-only (client credentials) token.
APP_ONLY_SCOPE = "https://outlook.office365.com/.default"


class OAuthProvider(Base):
    __tablename__ = "oauth_provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    name_key: Mapped[str] = mapped_column(String(100), unique=True)  # case-folded: unique regardless of case
    flow: Mapped[str] = mapped_column(String(20))
    client_id: Mapped[str] = mapped_column(String(200))
    # Fernet token, like account passwords (services.platform.secretstore re-encrypts it on key rotation).
    client_secret_encrypted: Mapped[str] = mapped_column(Text)
    tenant_id: Mapped[str] = mapped_column(String(200), default="organizations")
    authority: Mapped[str] = mapped_column(String(500), default=DEFAULT_AUTHORITY)
    callback_path: Mapped[str] = mapped_column(String(200), default="")
    # A private CA for an authority of one's own (a test server, a private cloud); None: the system CAs.
    ca_cert_pem: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    @staticmethod
    def key_for(name: str) -> str:
        """The name compared for uniqueness: stripped and case-folded."""
        return name.strip().casefold()
