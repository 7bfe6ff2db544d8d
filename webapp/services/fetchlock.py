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

from webapp.services.errors import Conflict
from webapp.services.redisconn import get_redis

TTL_SECONDS = 300
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
_TAKE_OVER = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) end "
    "return nil"
)


class AlreadyRunning(Conflict):
    """A fetch of this account is already running."""


class Lock:
    def __init__(self, key: str, token: str) -> None:
        self.key = key
        self.token = token

    def refresh(self) -> None:
        get_redis().eval(_REFRESH, 1, self.key, self.token, TTL_SECONDS)


def _key(account_id: int) -> str:
    return f"emailconnector:fetch:lock:{account_id}"


def _token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}"


def _holder_is_dead(token: str) -> bool:
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


@contextmanager
def hold(account_id: int) -> Iterator[Lock]:
    """Hold the account's fetch lock, or raise AlreadyRunning."""
    redis = get_redis()
    key, token = _key(account_id), _token()
    if not redis.set(key, token, nx=True, ex=TTL_SECONDS):
        current = redis.get(key)
        holder = current.decode() if isinstance(current, bytes) else str(current or "")
        if not (holder and _holder_is_dead(holder) and redis.eval(_TAKE_OVER, 1, key, holder, token, TTL_SECONDS)):
            raise AlreadyRunning("a fetch of this account is already running")
    try:
        yield Lock(key, token)
    finally:
        redis.eval(_RELEASE, 1, key, token)
