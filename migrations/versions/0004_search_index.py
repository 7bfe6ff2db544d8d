"""full-text search index of messages (FTS5 on SQLite, tsvector + GIN on PostgreSQL)

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE message_search ("
            " message_id INTEGER PRIMARY KEY REFERENCES email_message(id) ON DELETE CASCADE,"
            " document tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_message_search_document ON message_search USING GIN (document)")
    else:
        op.execute("CREATE VIRTUAL TABLE message_fts USING fts5(subject, sender, body, tokenize = 'unicode61')")
        op.execute(
            "CREATE TRIGGER message_fts_delete AFTER DELETE ON email_message "
            "BEGIN DELETE FROM message_fts WHERE rowid = old.id; END"
        )
    # Unread filter and keyset pages per folder.
    op.create_index("ix_email_message_unread", "email_message", ["account_id", "folder", "seen", "sort_at", "id"])


def downgrade():
    op.drop_index("ix_email_message_unread", "email_message")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE message_search")
    else:
        op.execute("DROP TRIGGER message_fts_delete")
        op.execute("DROP TABLE message_fts")
