"""The state of a message list as the query string carries it: folder, search, filters and page.

The mailbox page reads it, and passes it on to the message page (Previous/Next walk the same list) and to
the fetch progress (which refreshes the same list while batches land).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from werkzeug.datastructures import MultiDict

from webapp.services.reading import messages

# The query-string names of the search and filters (the folder and the page cursor are kept apart).
FILTER_ARGS = ("q", "since", "until", "unread", "attachments")


@dataclass(frozen=True)
class ListState:
    folder: str | None
    q: str = ""
    since: str = ""
    until: str = ""
    unread: bool = False
    attachments: bool = False
    after: str = ""

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> ListState:
        """The list state of a query string: the search cut to 200 characters, days that are not dates dropped."""
        return cls(
            folder=args.get("folder") or None,
            q=args.get("q", "")[:200],
            since=_day_text(args.get("since", "")),
            until=_day_text(args.get("until", "")),
            unread=args.get("unread") == "1",
            attachments=args.get("attachments") == "1",
            after=args.get("after", ""),
        )

    @property
    def filtered(self) -> bool:
        """Does a search or filter narrow the list?"""
        return bool(self.q.strip() or self.since or self.until or self.unread or self.attachments)

    def filters(self, zone: tzinfo = UTC) -> messages.Filters:
        """The service's filters; the days are whole days in ``zone`` (the user's time zone)."""
        until = _day(self.until, zone)
        return messages.Filters(
            text=self.q,
            since=_day(self.since, zone),
            # "until" is the whole day; the very last day there is has no day after it: no upper bound.
            until=until + timedelta(days=1)
            if until and until < datetime.max.replace(tzinfo=UTC) - timedelta(days=1)
            else None,
            unread=self.unread,
            attachments=self.attachments,
        )

    def filter_args(self) -> dict[str, Any]:
        """The search and filters as query arguments (only those set): for links into and out of the list."""
        values = {
            "q": self.q,
            "since": self.since,
            "until": self.until,
            "unread": "1" if self.unread else "",
            "attachments": "1" if self.attachments else "",
        }
        return {name: value for name, value in values.items() if value}

    def list_args(self, folder: str) -> dict[str, Any]:
        """The query arguments of this list's first page in ``folder``."""
        return {"folder": folder, **self.filter_args()}


_LAST_DAY = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def _day_text(value: str) -> str:
    return value if _day(value) else ""


def _day(value: str, zone: tzinfo = UTC) -> datetime | None:
    try:
        day = date.fromisoformat(value)
        return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
    except (ValueError, OverflowError):  # not a date, or one whose UTC time falls outside years 1-9999
        return None
