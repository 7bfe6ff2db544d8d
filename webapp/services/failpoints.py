"""Fail points: named places in the fetch path where a test can make this process fail or die.

Off unless configured: ``FAILPOINTS`` (``EMAILCONNECTOR_FAILPOINTS='{"before_commit": [3, "kill"]}'``)
maps a point to the hit number at which to act, and the action: "raise" or "kill" (SIGKILL this process,
as a crash would). They exist for the crash-safety proofs; production never sets them.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

from flask import current_app

_hits: Counter[str] = Counter()


class FailPoint(RuntimeError):
    """Raised at a configured fail point."""


def hit(name: str) -> None:
    points = current_app.config.get("FAILPOINTS")
    if not points or name not in points:
        return
    when, action = points[name]
    _hits[name] += 1
    if _hits[name] != int(when):
        return
    if action == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    raise FailPoint(f"fail point {name!r} (hit {when})")


def reset() -> None:
    _hits.clear()
