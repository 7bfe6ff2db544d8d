"""Email Connector: connect your own mail accounts; send mail, fetch what arrives, read and search it."""

from __future__ import annotations

from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None, *, create_instance: bool = True) -> Flask:
    """Build the app: config → extensions → blueprints, CLI, error handlers.

    ``create_instance=False`` (the command line, except ``db upgrade``) creates nothing in the instance
    folder — no keys, no SQLite file: missing keys are listed in ``config["MISSING_KEY_FILES"]``.
    """
    from webapp import config

    app = Flask(__name__, instance_path=config.default_instance_path(), instance_relative_config=True)
    config.load(app, test_config, create_instance=create_instance)

    from webapp import database, security
    from webapp.extensions import csrf, db, htmx, login_manager, migrate

    db.init_app(app)
    database.init_app(app)
    migrate.init_app(app, db, directory=str(config.PROJECT_ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    security.init_app(app)

    from webapp import routing, views

    routing.init_app(app)

    views.init_app(app)
    return app
