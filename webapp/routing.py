"""URL converters: an ``int`` in a path is a database id, so it must fit in 64 bits (else 404, not 500)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.routing import IntegerConverter, Map

from webapp.models.base import MAX_ID


class IdConverter(IntegerConverter):
    """``<int:…>`` that matches only 0 … 2**63 - 1: a bigger number cannot be a row of ours."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def init_app(app: Flask) -> None:
    """Install the converters; call before any blueprint is registered."""
    app.url_map.converters["int"] = IdConverter
