"""The only reader of HX-* headers: decides between a whole page and its fragment."""

from __future__ import annotations

from typing import Any

from flask import make_response, render_template
from flask.typing import ResponseReturnValue
from htmx_flask import request


def is_htmx() -> bool:
    return bool(request.htmx)


def render(page: str, fragment: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """Render ``fragment`` for an HTMX request, else the whole ``page`` (which includes the fragment)."""
    response = make_response(render_template(fragment if is_htmx() else page, **context), status)
    response.headers["Vary"] = "HX-Request"
    return response
