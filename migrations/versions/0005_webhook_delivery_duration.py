"""webhook deliveries: duration of the last attempt; webhook URLs in old error texts cut to scheme and host

Revision ID: 0005
Revises: 0004
"""

import re
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# The same rule as webapp.adapters.webhook.redact_text, copied so the migration does not change with the app.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:!?)\]]")


def _redact(match):
    try:
        parts = urlsplit(match.group(0))
        host, port = parts.hostname, parts.port
    except ValueError:
        return "(an invalid URL)"
    if not parts.scheme or not host:
        return "(an invalid URL)"
    netloc = f"[{host}]" if ":" in host else host
    return f"{parts.scheme.lower()}://{netloc}" + (f":{port}" if port is not None else "")


def _scrub(table, column, where):
    bind = op.get_bind()
    rows = bind.execute(sa.text(f"SELECT id, {column} FROM {table} WHERE {where}")).all()
    for row_id, text in rows:
        cleaned = _URL_IN_TEXT.sub(_redact, text or "")
        if text and cleaned != text:
            bind.execute(sa.text(f"UPDATE {table} SET {column} = :value WHERE id = :id"), {"value": cleaned, "id": row_id})


def upgrade():
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.add_column(sa.Column("duration_ms", sa.Integer(), nullable=True))
    # Paths and query strings of webhook URLs often hold secrets; error texts show scheme and host only.
    _scrub("error_log", "message", "operation = 'callback'")
    _scrub("delivery", "last_error", "last_error IS NOT NULL")


def downgrade():
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_column("duration_ms")
