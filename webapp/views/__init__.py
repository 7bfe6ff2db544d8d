"""HTTP views: one blueprint package per area (routes.py + forms.py)."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from webapp.extensions import db
from webapp.services.errors import Conflict, ConnectorError, NotFound
from webapp.services.platform.blobs import BlobMissing
from webapp.views import templating


def init_app(app: Flask) -> None:
    """Register the blueprints, the template filters and the error pages (each rolls the session back first)."""
    from webapp.views.accounts.routes import bp as accounts_bp
    from webapp.views.admin.routes import bp as admin_bp
    from webapp.views.auth.routes import bp as auth_bp
    from webapp.views.help.routes import bp as help_bp
    from webapp.views.mailbox.routes import bp as mailbox_bp
    from webapp.views.main.routes import bp as main_bp
    from webapp.views.messages.routes import bp as messages_bp
    from webapp.views.outbox.routes import bp as outbox_bp
    from webapp.views.settings.routes import bp as settings_bp
    from webapp.views.wizard.routes import bp as wizard_bp

    for blueprint in (
        auth_bp,
        main_bp,
        accounts_bp,
        admin_bp,
        mailbox_bp,
        messages_bp,
        outbox_bp,
        help_bp,
        settings_bp,
        wizard_bp,
    ):
        app.register_blueprint(blueprint)
    templating.init_app(app)

    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError) -> tuple[str, int]:
        db.session.rollback()
        return render_template(
            "error.html",
            code=400,
            message="The form expired or was not sent by this site. Reload the page and try again.",
        ), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> tuple[str, int]:
        db.session.rollback()  # a failed transaction must not break the error page too
        code = error.code or 500
        return render_template("error.html", code=code, message=error.description), code

    @app.errorhandler(BlobMissing)
    def blob_missing(error: BlobMissing) -> tuple[str, int]:
        db.session.rollback()
        message = "The stored bytes of this message or attachment are missing (see the Error logs and backups)."
        return render_template("error.html", code=404, message=message), 404

    @app.errorhandler(ConnectorError)
    def service_error(error: ConnectorError) -> tuple[str, int]:
        # A service refusal no view caught: still the user's request, not our failure.
        db.session.rollback()
        code = 404 if isinstance(error, NotFound) else 409 if isinstance(error, Conflict) else 400
        return render_template("error.html", code=code, message=str(error)), code

    @app.errorhandler(Exception)
    def unexpected_error(error: Exception) -> tuple[str, int]:
        # Logged with its traceback; the user gets a plain page, never a second failure on the way.
        app.logger.error("unexpected error on %s %s", request.method, request.path, exc_info=error)
        db.session.rollback()
        return render_template("error.html", code=500, message="Something went wrong on our side."), 500
