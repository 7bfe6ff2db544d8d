"""The app's Redis: one client per app, shared by threads, and the coordination adapter on it."""

from __future__ import annotations

from flask import current_app
from redis import Redis

from webapp.adapters.coordination import Coordination


def get_redis() -> Redis:
    """Return the app's Redis client, created on first use."""
    client: Redis | None = current_app.extensions.get("emailconnector.redis")
    if client is None:
        client = Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=10, socket_connect_timeout=5)
        current_app.extensions["emailconnector.redis"] = client
    return client


def coordination() -> Coordination:
    """Locks, flags, counters and the RQ queues, over the app's Redis (webapp.adapters.coordination)."""
    found: Coordination | None = current_app.extensions.get("emailconnector.coordination")
    if found is None:
        found = Coordination(get_redis())
        current_app.extensions["emailconnector.coordination"] = found
    return found
