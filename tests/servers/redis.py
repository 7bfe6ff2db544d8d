"""Redis for the tests: ``REDIS_URL`` (a db number of our own) or an embedded redis-server."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from redis import Redis

from webapp.adapters import redisserver

CLAIM_KEY = "emailconnector:testkit:claim"


@dataclass
class TestRedis:
    url: str
    process: subprocess.Popen[bytes] | None = None

    def client(self) -> Redis:
        return Redis.from_url(self.url)

    def flush(self) -> None:
        """Empty our own db only (keeping the claim that reserves it)."""
        client = self.client()
        claim = client.get(CLAIM_KEY)
        client.flushdb()
        if claim is not None:
            client.set(CLAIM_KEY, claim, ex=6 * 3600)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
        else:
            self.client().delete(CLAIM_KEY)


def start(folder: Path) -> TestRedis:
    base = os.environ.get("REDIS_URL")
    if not base:
        socket_path = folder / "redis.sock"
        process = redisserver.start(socket_path, folder / "redis-data", persist=False)
        return TestRedis(f"unix://{socket_path}", process)
    # A db number of our own, so parallel test runs on one Redis do not flush each other's data.
    root = base.rsplit("/", 1)[0] if base.count("/") > 2 else base.rstrip("/")
    for number in range(1, 16):
        url = f"{root}/{number}"
        if Redis.from_url(url).set(CLAIM_KEY, str(os.getpid()), nx=True, ex=6 * 3600):
            return TestRedis(url)
    raise RuntimeError(f"every Redis db 1-15 at {root} is claimed by another test run")
