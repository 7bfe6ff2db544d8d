"""The app a job runs in: the caller's when there is one (``fetch --inline``, tests), else one per process."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

from flask import Flask, has_app_context

_app: Flask | None = None


def app_context() -> AbstractContextManager[object]:
    """The caller's app context when there is one (then a no-op), else this process's app, built once."""
    global _app
    if has_app_context():
        return nullcontext()
    if _app is None:
        from webapp import create_app

        _app = create_app()
    return _app.app_context()
