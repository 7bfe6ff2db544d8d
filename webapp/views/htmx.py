"""The only reader of HX-* headers: decides between a whole page and its fragment."""

from __future__ import annotations

from typing import Any

from flask import make_response, redirect, render_template
from flask.typing import ResponseReturnValue
from htmx_flask import request


def is_htmx() -> bool:
    """Did HTMX send this request (HX-Request)?"""
    return bool(request.htmx)


def render(page: str, fragment: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """Render ``fragment`` for an HTMX request, else the whole ``page`` (which includes the fragment)."""
    response = make_response(render_template(fragment if is_htmx() else page, **context), status)
    response.headers["Vary"] = "HX-Request"
    return response


def fragment_or_redirect(fragment: str, target: str, **context: Any) -> ResponseReturnValue:
    """After an action: ``fragment`` for an HTMX request, else a redirect to ``target`` (a plain form post)."""
    response = make_response(render_template(fragment, **context)) if is_htmx() else make_response(redirect(target))
    response.headers["Vary"] = "HX-Request"
    return response


def vary(response: ResponseReturnValue) -> ResponseReturnValue:
    """Mark a response that depends on HX-Request (one decided elsewhere on :func:`is_htmx`)."""
    made = make_response(response)
    made.headers["Vary"] = "HX-Request"
    return made
