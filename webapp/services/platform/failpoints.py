"""Fail points: named places in the fetch and send paths where a test makes the process fail or die.

A test passes a :class:`FailPoints` to the service it calls (``fetching.fetch``, ``fetchruns.run``,
``sending.send``); everyone else gets :data:`NONE`, which does nothing. Nothing reads them from the
configuration or the environment: production code cannot switch them on by accident.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Mapping


class FailPoint(RuntimeError):
    """Raised at a fail point set to "raise"."""


class FailPoints:
    """Where to act: ``{"before_commit": (3, "kill")}`` acts at the third hit of that point — "raise"
    (:class:`FailPoint`) or "kill" (SIGKILL this process, as a crash would)."""

    def __init__(self, points: Mapping[str, tuple[int, str]] | None = None) -> None:
        self.points = dict(points or {})
        self.hits: Counter[str] = Counter()

    def hit(self, name: str) -> None:
        """Count a pass through ``name``; act when it is the configured one."""
        if name not in self.points:
            return
        when, action = self.points[name]
        self.hits[name] += 1
        if self.hits[name] != int(when):
            return
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        raise FailPoint(f"fail point {name!r} (hit {when})")


NONE = FailPoints()
