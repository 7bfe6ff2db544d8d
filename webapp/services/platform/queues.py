"""The RQ queues: names, and enqueueing work by dotted path (webapp never imports jobs)."""

from __future__ import annotations

from webapp.adapters.coordination import Queue
from webapp.services.platform.redisconn import coordination

FETCH = "fetch"
SEND = "send"
DEFAULT = "default"
ALL = (FETCH, SEND, DEFAULT)


def queue(name: str) -> Queue:
    """The RQ queue ``name`` (JSON-serialized jobs) on the app's Redis."""
    return coordination().queue(name)
