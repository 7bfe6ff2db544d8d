"""Template filters: times in the user's time zone, and counted nouns ("1 message", "2 messages")."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, tzinfo

from flask import Flask
from flask_login import current_user
from markupsafe import Markup


def init_app(app: Flask) -> None:
    """Register the template filters ``when`` and ``counted``."""
    app.add_template_filter(when)
    app.add_template_filter(counted)


def user_zone() -> tzinfo | None:
    """The time zone the current user chose; None: the browser's (static/app.js formats those times)."""
    name = getattr(current_user, "timezone", None) if current_user.is_authenticated else None
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def when(value: datetime | None, seconds: bool = False) -> Markup:
    """A ``<time>`` element: the time in the user's time zone, UTC on hover (title).

    Without a chosen time zone the text is UTC and marked ``data-local``: app.js rewrites it in the
    browser's time zone (without JavaScript it stays UTC, and says so).
    """
    if value is None:
        return Markup('<span class="muted">—</span>')
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    utc = value.astimezone(UTC)
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    stamp = utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    title = utc.strftime("%Y-%m-%d %H:%M:%S UTC")
    zone = user_zone()
    if zone is None:
        local = "seconds" if seconds else "minutes"
        return Markup('<time datetime="{}" title="{}" data-local="{}">{} UTC</time>').format(
            stamp, title, local, utc.strftime(pattern)
        )
    try:
        text = value.astimezone(zone).strftime(pattern)
    except (OverflowError, ValueError):  # a date at the end of the calendar (a hostile Date header): UTC
        text = utc.strftime(pattern) + " UTC"
    return Markup('<time datetime="{}" title="{}">{}</time>').format(stamp, title, text)


def counted(number: int, noun: str, plural: str | None = None) -> str:
    """``1 message``, ``2 messages``, ``1,000 messages`` (``plural`` when adding an s is wrong)."""
    word = noun if number == 1 else (plural or noun + "s")
    return f"{number:,} {word}"
