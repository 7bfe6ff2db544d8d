"""The app's Redis connection (one client per app, shared by threads)."""

from __future__ import annotations

from flask import current_app
from redis import Redis


def get_redis() -> Redis:
    """Return the app's Redis client, created on first use."""
    client: Redis | None = current_app.extensions.get("emailconnector.redis")
    if client is None:
        client = Redis.from_url(current_app.config["REDIS_URL"], socket_timeout=10, socket_connect_timeout=5)
        current_app.extensions["emailconnector.redis"] = client
    return client
