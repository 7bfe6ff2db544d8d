"""A user's own preferences: the time zone the pages show times in."""

from __future__ import annotations

import functools
import zoneinfo

from webapp.database import writes
from webapp.extensions import db
from webapp.models import User
from webapp.services.errors import Invalid


@functools.cache
def time_zones() -> tuple[str, ...]:
    """The IANA time zone names this machine knows, sorted."""
    return tuple(sorted(name for name in zoneinfo.available_timezones() if "/" in name or name == "UTC"))


@writes
def set_time_zone(user: User, name: str | None) -> None:
    """Show the user's times in ``name`` (an IANA name); None or empty: in the browser's time zone."""
    name = (name or "").strip() or None
    if name is not None and name not in time_zones():
        raise Invalid(f"time zone: unknown name {name!r}")
    user.timezone = name
    db.session.commit()
