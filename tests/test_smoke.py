"""The app starts, serves its health check, and migrations match the models."""

from __future__ import annotations

from flask.testing import FlaskClient


def test_healthz_reports_database_and_redis(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_migrations_match_models(app) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from webapp.extensions import db
    from webapp.models.search import is_search_table

    def include(obj, name, type_, reflected, compare_to) -> bool:
        table = obj.table.name if type_ in ("index", "column") and hasattr(obj, "table") else name
        return not is_search_table(table)

    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include})
        diff = compare_metadata(context, db.metadata)
    assert diff == []
