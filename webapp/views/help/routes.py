"""Help pages: the Markdown docs of a topic, rendered as a page of the app (``/help/webhooks``)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template
from flask.typing import ResponseReturnValue
from flask_login import login_required

from webapp.config import PROJECT_ROOT
from webapp.views.help.markdown import render

bp = Blueprint("help", __name__, url_prefix="/help")

# Topic -> the file of docs/ it shows. Only these are served (never a path from the request).
TOPICS = {"webhooks": "webhooks.md", "accounts": "accounts.md", "oauth": "oauth.md"}


@bp.route("/<topic>")
@login_required
def page(topic: str) -> ResponseReturnValue:
    """A help topic: its Markdown file of docs/ as a page (only the topics of ``TOPICS``)."""
    name = TOPICS.get(topic)
    if name is None:
        abort(404)
    try:
        source = (PROJECT_ROOT / "docs" / name).read_text(encoding="utf-8")
    except OSError:
        abort(404, "This help page is not installed with this copy of the app.")
    first = source.lstrip().splitlines()[0] if source.strip() else topic
    return render_template("help/page.html", title=first.lstrip("# ").strip(), body=render(source))
