"""The full-text search index of messages: an FTS5 table on SQLite, a tsvector table on PostgreSQL.

These tables are created by migration 0004 in each dialect's own SQL, so they are not SQLAlchemy
models; autogenerate and the migration test skip them (``is_search_table``).
"""

from __future__ import annotations

SQLITE_TABLE = "message_fts"
POSTGRES_TABLE = "message_search"


def is_search_table(name: str | None) -> bool:
    """Is ``name`` a table of the search index (the FTS5 table and its shadow tables, or the tsvector table)?"""
    return bool(name) and (name == POSTGRES_TABLE or str(name).startswith(SQLITE_TABLE))
