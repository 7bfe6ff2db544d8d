"""One fetch per account at a time, across workers and machines: a lock in Redis.

The lock expires unless its holder refreshes it (after every batch), so a machine that vanished frees
it after ``TTL_SECONDS``. A holder on this machine whose process is gone (a killed worker) is taken over
at once: its token names the host and process id.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from webapp.adapters.coordination import Lock
from webapp.services.errors import Conflict
from webapp.services.platform.redisconn import coordination

TTL_SECONDS = 300


class AlreadyRunning(Conflict):
    """A fetch of this account is already running."""


class Held:
    """The account's fetch lock, held: refresh it after every batch."""

    def __init__(self, lock: Lock, token: str) -> None:
        self._lock = lock
        self.token = token

    def refresh(self) -> None:
        """Restart the lock's expiry (after every batch: a fetch that is alive keeps its lock)."""
        self._lock.refresh(self.token)


def _token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


def holder_is_dead(token: str) -> bool:
    """Is ``token`` (host:pid:…) a process of this machine that no longer runs?"""
    host, _, rest = token.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def is_held(account_id: int) -> bool:
    """Is a fetch of the account running now (its lock held by a live holder)?"""
    holder = coordination().lock(f"fetch:lock:{account_id}", TTL_SECONDS).holder()
    return holder is not None and not holder_is_dead(holder)


@contextmanager
def hold(account_id: int) -> Iterator[Held]:
    """Hold the account's fetch lock, or raise AlreadyRunning."""
    lock = coordination().lock(f"fetch:lock:{account_id}", TTL_SECONDS)
    token = _token()
    if not lock.acquire(token):
        holder = lock.holder()
        if not (holder and holder_is_dead(holder) and lock.replace(holder, token)):
            raise AlreadyRunning("a fetch of this account is already running")
    try:
        yield Held(lock, token)
    finally:
        lock.release(token)
