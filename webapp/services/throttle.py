"""Login throttling shared by every process through Redis."""

from __future__ import annotations

import hashlib

from flask import current_app

from webapp.services.redisconn import get_redis

PREFIX = "ec:login-failures:"


def _keys(username: str, remote_addr: str | None) -> list[str]:
    name = hashlib.sha256(username.strip().casefold().encode()).hexdigest()[:32]
    keys = [f"{PREFIX}user:{name}"]
    if remote_addr:
        keys.append(f"{PREFIX}addr:{remote_addr}")
    return keys


def retry_after(username: str, remote_addr: str | None) -> int:
    """Seconds until a login may be tried again, or 0 when it may be tried now."""
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    redis = get_redis()
    wait = 0
    for key in _keys(username, remote_addr):
        # An address gets more tries than a name: several people may share one proxy.
        allowed = limit * (4 if ":addr:" in key else 1)
        count = int(redis.get(key) or 0)
        if count >= allowed:
            wait = max(wait, int(redis.ttl(key)), 1)
    return wait


def record_failure(username: str, remote_addr: str | None) -> None:
    window = current_app.config["LOGIN_LOCKOUT_SECONDS"]
    redis = get_redis()
    keys = _keys(username, remote_addr)
    pipe = redis.pipeline()
    for key in keys:
        pipe.incr(key)
        pipe.ttl(key)
    replies = pipe.execute()
    # The window starts at the first failure (EXPIRE NX needs Redis 7; the embedded one is 6.2).
    for key, ttl in zip(keys, replies[1::2], strict=True):
        if ttl < 0:
            redis.expire(key, window)


def reset(username: str) -> None:
    get_redis().delete(*_keys(username, None))
