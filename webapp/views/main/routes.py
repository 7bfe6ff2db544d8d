"""The overview page and the health check."""

from __future__ import annotations

from flask import Blueprint, jsonify, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_required

from webapp.extensions import csrf
from webapp.services.account import status
from webapp.services.identity import users
from webapp.services.platform import health

bp = Blueprint("main", __name__)


@bp.route("/")
@login_required
def index() -> ResponseReturnValue:
    """The overview: the accounts the user may see, with how each is doing."""
    visible = users.visible_accounts(current_user)
    return render_template("main/index.html", accounts=visible, statuses=status.of_accounts(visible))


@bp.route("/healthz")
@csrf.exempt
def healthz() -> ResponseReturnValue:
    """Health as JSON, without login (load balancers): 200 when the database and Redis answer, else 503."""
    status = health.check()
    ok = all(value == "ok" for value in status.values())
    return jsonify(status="ok" if ok else "unhealthy", **status), 200 if ok else 503
