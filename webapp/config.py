"""Configuration: defaults → instance/config.py → EMAILCONNECTOR_* environment → test overrides.

The instance folder is ``EMAILCONNECTOR_INSTANCE_PATH``, else the project's own ``instance/`` (never the
current directory). ``DATABASE_URL`` and ``REDIS_URL`` are read as they are. On the embedded defaults
(neither set) the secret key and the encryption keys are generated once into the instance folder;
otherwise they must be given, and the app refuses to start without them.
"""

from __future__ import annotations

import math
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from flask import Flask

from webapp.adapters.storage import keyfile
from webapp.adapters.storage.secretbox import generate_key, parse_keys

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRET_KEY_FILE = "secret_key"
ENCRYPTION_KEYS_FILE = "encryption_keys"
SQLITE_FILE = "email-connector.db"
REDIS_SOCKET = "redis.sock"


class ConfigError(RuntimeError):
    """The configuration cannot work; the message says what to set."""


DEFAULTS: dict[str, Any] = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "ec_session",
    "PERMANENT_SESSION_LIFETIME": 12 * 3600,
    # A login session ends when unused this long, and PERMANENT_SESSION_LIFETIME after login anyway.
    "SESSION_IDLE_SECONDS": 2 * 3600,
    "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead; pages left open overnight still post
    "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
    "MAX_CONTENT_LENGTH": 50 * 1024 * 1024,
    # Reverse proxies in front of the app (IIS, nginx): how many hops to trust for X-Forwarded-*.
    "PROXY_FIX_X_FOR": 0,
    "PROXY_FIX_X_PROTO": 0,
    "PROXY_FIX_X_HOST": 0,
    "PROXY_FIX_X_PREFIX": 0,
    "LOGIN_MAX_FAILURES": 5,
    "LOGIN_LOCKOUT_SECONDS": 900,
    # Where message and attachment bytes live: "folder" (instance/blobs) or "database".
    "BLOB_STORE": "folder",
    # Blobs no message names any more are removed once unused this long (a fetch stores bytes shortly
    # before the rows naming them are committed).
    "BLOB_GC_GRACE_SECONDS": 3600,
    # A worker sending queued mail holds it this long at a time (renewed as it goes); a stopped worker's
    # messages are put back (or marked possibly sent) after it.
    "SEND_LEASE_SECONDS": 300,
    # Subscriptions to incoming mail (IMAP IDLE, docs/subscriptions.md): an IDLE lasts at most this long
    # before DONE proves the connection alive and a new IDLE starts (RFC 2177: under 29 minutes); a
    # connection that answers nothing is noticed after it plus the account's timeout.
    "SUBSCRIPTION_IDLE_SECONDS": 300,
    # A server without IDLE is fetched this often instead.
    "SUBSCRIPTION_POLL_SECONDS": 60,
    # Reconnecting: waits of 2 s, 4 s, … at most SUBSCRIPTION_BACKOFF_MAX_SECONDS (times 0.5-1.5), then
    # CONNECTIONRETRYEXHAUSTED after SUBSCRIPTION_RETRIES failed attempts in a row.
    "SUBSCRIPTION_RETRIES": 10,
    "SUBSCRIPTION_BACKOFF_SECONDS": 2.0,
    "SUBSCRIPTION_BACKOFF_MAX_SECONDS": 300.0,
    # Each subscribed account is held by one subscriber process through a lease in Redis, renewed every
    # SUBSCRIPTION_CHECK_SECONDS; another process takes it over once the lease expires.
    "SUBSCRIPTION_LEASE_SECONDS": 30,
    "SUBSCRIPTION_CHECK_SECONDS": 2.0,
    # How long `fetch --wait` waits for a job before giving up (seconds).
    "FETCH_WAIT_SECONDS": 3600,
    # Webhooks may POST to private and loopback addresses (on-premises receivers); False refuses them.
    # Link-local and cloud-metadata addresses are refused either way (docs/webhooks.md).
    "WEBHOOK_ALLOW_PRIVATE": True,
    # Automatic configuration (docs/autoconfig.md): every network lookup of one discovery together within
    # this many seconds; complete answers kept this long; DNS through these servers ("host:port", comma-
    # separated; None: the system's resolvers); the port of the domains' HTTPS autoconfig hosts (443; tests
    # serve them elsewhere).
    "AUTOCONFIG_TIMEOUT_SECONDS": 4.0,
    "AUTOCONFIG_CACHE_SECONDS": 86400,
    "AUTOCONFIG_DNS_SERVERS": None,
    "AUTOCONFIG_HTTPS_PORT": 443,
    # Whether a domain's autoconfig file may be fetched from a private or loopback address (an internal
    # mail domain); off by default, so that an address cannot make the server probe its own network.
    "AUTOCONFIG_ALLOW_PRIVATE": False,
    "DATABASE_URL": None,
    "REDIS_URL": None,
}


def default_instance_path() -> str:
    """The instance folder: ``EMAILCONNECTOR_INSTANCE_PATH``, else the project's ``instance/``."""
    given = os.environ.get("EMAILCONNECTOR_INSTANCE_PATH")
    # A relative path given by the operator means from where they are; Flask needs it absolute.
    return os.path.abspath(given) if given else str(PROJECT_ROOT / "instance")


def load(app: Flask, test_config: dict[str, Any] | None, *, create_instance: bool = True) -> None:
    """Fill ``app.config`` in precedence order and derive the database and Redis settings.

    Without ``create_instance`` nothing is created in the instance folder: key files missing there are
    listed in ``MISSING_KEY_FILES`` and the app has no keys, and ``CREATE_INSTANCE`` tells the database
    set-up not to create the SQLite file (the command line says what to run).
    """
    app.config.from_mapping(DEFAULTS)
    app.config.from_pyfile("config.py", silent=True)
    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(name):
            app.config[name] = os.environ[name]
    app.config.from_prefixed_env("EMAILCONNECTOR")
    _check_types(app.config, check_ranges=True)  # what the operator wrote, before any test override
    if test_config:
        app.config.from_mapping(test_config)
        _check_types(app.config)

    instance = Path(app.instance_path)
    embedded = not app.config["DATABASE_URL"] and not app.config["REDIS_URL"]
    app.config["EMBEDDED"] = embedded
    app.config["SQLALCHEMY_DATABASE_URI"] = database_uri(app.config["DATABASE_URL"], instance)
    # The embedded Redis serves the instance whenever REDIS_URL is not set (DATABASE_URL may be).
    app.config["EMBEDDED_REDIS_SOCKET"] = None
    if not app.config["REDIS_URL"]:
        app.config["REDIS_URL"] = f"unix://{instance / REDIS_SOCKET}"
        app.config["EMBEDDED_REDIS_SOCKET"] = str(instance / REDIS_SOCKET)
    app.config["CREATE_INSTANCE"] = create_instance
    _load_keys(app, instance, embedded, create_instance)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


# Numbers that must be above zero (a zero timeout, lease or lifetime would stop the app working); every
# other number may be zero, none may be negative.
_POSITIVE = {
    "PERMANENT_SESSION_LIFETIME",
    "SESSION_IDLE_SECONDS",
    "MAX_CONTENT_LENGTH",
    "LOGIN_MAX_FAILURES",
    "LOGIN_LOCKOUT_SECONDS",
    "SEND_LEASE_SECONDS",
    "SUBSCRIPTION_IDLE_SECONDS",
    "SUBSCRIPTION_POLL_SECONDS",
    "SUBSCRIPTION_BACKOFF_SECONDS",
    "SUBSCRIPTION_BACKOFF_MAX_SECONDS",
    "SUBSCRIPTION_LEASE_SECONDS",
    "SUBSCRIPTION_CHECK_SECONDS",
    "FETCH_WAIT_SECONDS",
    "AUTOCONFIG_TIMEOUT_SECONDS",
    "AUTOCONFIG_HTTPS_PORT",
}
_TEN_YEARS = 10 * 365 * 24 * 3600
_HIGHEST = {
    "AUTOCONFIG_HTTPS_PORT": 65535,
    "MAX_CONTENT_LENGTH": 2**40,
    "PERMANENT_SESSION_LIFETIME": _TEN_YEARS,
    # every other *_SECONDS below (a date that far away overflows: every login failed on 10**15 s)
}


def _check_range(settings: Any, name: str, default: int | float) -> None:
    """A number from the operator: of the default's kind (2.5 is no whole number) and in range."""
    value = settings.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"EMAILCONNECTOR_{name}: {value!r} is not a number")
    if isinstance(default, int) and isinstance(value, float):
        if not value.is_integer():
            raise ConfigError(f"EMAILCONNECTOR_{name}: {value!r} is not a whole number")
        settings[name] = value = int(value)
    positive = name in _POSITIVE
    highest = _HIGHEST.get(name, _TEN_YEARS if name.endswith("_SECONDS") else None)
    if value < 0 or (positive and value == 0) or (highest is not None and value > highest):
        lowest = ("above 0" if isinstance(default, float) else "at least 1") if positive else "at least 0"
        span = f"{lowest}, at most {highest}" if highest is not None else lowest
        raise ConfigError(f"EMAILCONNECTOR_{name}: {value!r} is out of range ({span})")


def _check_types(settings: Any, *, check_ranges: bool = False) -> None:
    """A setting whose default is a switch or a number must be one. From the environment a value that is
    not JSON comes as text: "no" would otherwise switch AUTOCONFIG_ALLOW_PRIVATE *on* (a non-empty string
    is true), and "abc" for a number would fail later with a traceback (found by the new-user review)."""
    for name, default in DEFAULTS.items():
        value = settings.get(name)
        if not isinstance(value, str) or isinstance(default, str) or default is None:
            continue
        word = value.strip().lower()
        if isinstance(default, bool):
            if word not in _TRUE | _FALSE:
                raise ConfigError(f"EMAILCONNECTOR_{name}: {value!r} is not true or false")
            settings[name] = word in _TRUE
        elif isinstance(default, int | float):
            try:
                settings[name] = type(default)(word)
            except ValueError:
                kind = "a whole number" if isinstance(default, int) else "a number"
                raise ConfigError(f"EMAILCONNECTOR_{name}: {value!r} is not {kind}") from None
    if check_ranges:
        for name, default in DEFAULTS.items():
            if isinstance(default, int | float) and not isinstance(default, bool):
                _check_range(settings, name, default)


def database_uri(url: str | None, instance: Path) -> str:
    """Turn ``DATABASE_URL`` into a SQLAlchemy URI (psycopg 3 for PostgreSQL; SQLite by default)."""
    if not url:
        return f"sqlite:///{instance / SQLITE_FILE}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _load_keys(app: Flask, instance: Path, embedded: bool, create: bool) -> None:
    keys = parse_keys(app.config.get("ENCRYPTION_KEYS") or "")
    secret = app.config.get("SECRET_KEY")
    app.config["ENCRYPTION_KEYS_FILE"] = None
    app.config["MISSING_KEY_FILES"] = []
    if keys and secret:
        app.config["ENCRYPTION_KEYS"] = keys
        return
    if not embedded:
        raise ConfigError(
            "EMAILCONNECTOR_SECRET_KEY and EMAILCONNECTOR_ENCRYPTION_KEYS must be set when "
            "DATABASE_URL or REDIS_URL is set (every web process and worker needs the same keys)."
        )
    if not create:
        needed = [name for name, given in ((SECRET_KEY_FILE, secret), (ENCRYPTION_KEYS_FILE, keys)) if not given]
        missing = [str(instance / name) for name in needed if not (instance / name).exists()]
        if missing:
            app.config["MISSING_KEY_FILES"] = missing
            app.config["ENCRYPTION_KEYS"] = keys
            return
    if not secret:
        secret, _ = keyfile.read_or_create(instance / SECRET_KEY_FILE, lambda: secrets.token_hex(32))
        app.config["SECRET_KEY"] = secret
    if not keys:
        path = instance / ENCRYPTION_KEYS_FILE
        text, created = keyfile.read_or_create(path, generate_key)
        if created:
            print(
                f"Generated encryption keys in {path}. Back this file up: losing it loses every "
                "stored password and token.",
                file=sys.stderr,
            )
        keys = parse_keys(text.replace("\n", ","))
        app.config["ENCRYPTION_KEYS_FILE"] = str(path)
    app.config["ENCRYPTION_KEYS"] = keys
