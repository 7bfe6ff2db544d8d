"""Installation-wide values kept in the database (shared by every machine)."""

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from webapp.models.base import Base

SETUP_TOKEN_HASH = "setup_token_sha256"


class AppSetting(Base):
    __tablename__ = "app_setting"

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
