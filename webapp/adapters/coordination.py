"""Redis as the processes' meeting point: every key under one prefix, one kind of lock, counters, the RQ
queues and jobs. The services use this and nothing else of Redis or RQ.

A :class:`Lock` is a key holding its holder's token; it expires unless refreshed, and only the holder (the
same token) refreshes, replaces or releases it — compare-and-set in Lua, so a holder whose lock expired
and was taken by another can never release the other's.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue as Queue
from rq import Worker
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.job import JobStatus as JobStatus
from rq.serializers import JSONSerializer

# What Redis raises when it does not answer (the command line turns it into one line).
UNAVAILABLE = (RedisConnectionError, RedisTimeoutError)

PREFIX = "emailconnector:"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
_REFRESH = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
_REPLACE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('set', KEYS[1], ARGV[2], 'EX', ARGV[3]) end "
    "return nil"
)


class Lock:
    """A named lock: at most one holder (a token) at a time, for ``ttl`` seconds unless refreshed."""

    def __init__(self, redis: Redis, name: str, ttl: int) -> None:
        self._redis = redis
        self.key = PREFIX + name
        self.ttl = ttl

    def acquire(self, token: str) -> bool:
        """Take the lock for ``token`` if nobody holds it; True when taken."""
        return bool(self._redis.set(self.key, token, nx=True, ex=self.ttl))

    def holder(self) -> str | None:
        """The token of the current holder, or None when the lock is free (or expired)."""
        value = self._redis.get(self.key)
        return _text(value) if value is not None else None

    def refresh(self, token: str) -> bool:
        """Restart the ``ttl`` if ``token`` still holds the lock; False when it no longer does."""
        return bool(self._redis.eval(_REFRESH, 1, self.key, token, self.ttl))

    def replace(self, old: str, new: str) -> bool:
        """Take the lock over from holder ``old`` (found dead or stale), if it still holds it."""
        return bool(self._redis.eval(_REPLACE, 1, self.key, old, new, self.ttl))

    def release(self, token: str) -> bool:
        """Free the lock if ``token`` still holds it (never another holder's); True when freed."""
        return bool(self._redis.eval(_RELEASE, 1, self.key, token))


class Coordination:
    """The app's Redis for coordination (one client, shared by threads)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    def ping(self) -> None:
        """Check that Redis answers; one of ``UNAVAILABLE`` is raised when it does not."""
        self.redis.ping()

    def lock(self, name: str, ttl: int) -> Lock:
        """The lock ``name`` (under the prefix), held for ``ttl`` seconds at a time."""
        return Lock(self.redis, name, ttl)

    def get(self, name: str) -> str | None:
        """The text stored under ``name``, or None when it is not set (or has expired)."""
        value = self.redis.get(PREFIX + name)
        return _text(value) if value is not None else None

    def put(self, name: str, value: str, ttl: int, *, only_if_new: bool = False) -> bool:
        """Set ``name`` for ``ttl`` seconds (``only_if_new``: unless it is set); True when it was set."""
        return bool(self.redis.set(PREFIX + name, value, ex=ttl, nx=only_if_new))

    def delete(self, name: str) -> None:
        """Unset ``name``."""
        self.redis.delete(PREFIX + name)

    def exists(self, name: str) -> bool:
        """Is ``name`` set (and not expired)?"""
        return bool(self.redis.exists(PREFIX + name))

    def script(self, lua: str, names: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``lua`` atomically on the keys ``names`` (prefixed) with ``args``."""
        return self.redis.register_script(lua)(keys=[PREFIX + name for name in names], args=list(args))

    def queue(self, name: str) -> Queue:
        """The RQ queue ``name``, with the JSON serializer (jobs carry ids, never pickled objects)."""
        return Queue(name, connection=self.redis, serializer=JSONSerializer)

    def job(self, job_id: str) -> Job | None:
        """The RQ job, or None when RQ does not know it (never queued, or its result expired)."""
        try:
            return Job.fetch(job_id, connection=self.redis, serializer=JSONSerializer)
        except NoSuchJobError:
            return None

    def work(self, queue_names: Sequence[str], *, burst: bool = False) -> None:
        """Be an RQ worker on ``queue_names`` until stopped (or, with ``burst``, until they are empty)."""
        Worker(list(queue_names), connection=self.redis, serializer=JSONSerializer).work(burst=burst)

    def live_worker(self, queue_name: str, grace: timedelta = timedelta(seconds=60)) -> bool:
        """Is a worker with a recent heartbeat listening on ``queue_name``?"""
        now = datetime.now(UTC)
        for worker in Worker.all(connection=self.redis, queue=self.queue(queue_name)):
            beat = worker.last_heartbeat
            if beat is None:
                continue
            if beat.tzinfo is None:
                beat = beat.replace(tzinfo=UTC)
            if now - beat <= timedelta(seconds=worker.worker_ttl) + grace:
                return True
        return False


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
