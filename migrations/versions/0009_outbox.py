"""the outbox: queue state, leases, per-recipient results, drafts; per-account send settings

Revision ID: 0009
Revises: 0008

Plain ADD COLUMN and CREATE INDEX only: on SQLite a batch operation would copy and drop the table, and
dropping email_account or email_message (foreign keys on) would take every row that refers to them along.
"""

from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ACCOUNT_COLUMNS = (
    sa.Column("max_send_attempts", sa.Integer(), nullable=False, server_default="3"),
    sa.Column("send_connections", sa.Integer(), nullable=False, server_default="1"),
    sa.Column("send_per_minute", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("append_to_sent", sa.Boolean(), nullable=False, server_default=sa.false()),
)
MESSAGE_COLUMNS = (
    sa.Column("send_after", sa.DateTime(timezone=True), nullable=True),
    sa.Column("lease_owner", sa.String(length=64), nullable=True),
    sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("send_stage", sa.String(length=8), nullable=True),
    sa.Column("possibly_sent", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("envelope", sa.JSON(), nullable=True),
    sa.Column("accepted", sa.JSON(), nullable=True),
    sa.Column("queue_key", sa.String(length=200), nullable=True),
    sa.Column("draft_fields", sa.JSON(), nullable=True),
)


def upgrade():
    for column in ACCOUNT_COLUMNS:
        op.add_column("email_account", column)
    for column in MESSAGE_COLUMNS:
        op.add_column("email_message", column)
    op.create_index("ix_email_message_outbox", "email_message", ["account_id", "status", "id"])
    op.create_index("ix_email_message_lease", "email_message", ["status", "lease_until"])
    op.create_index("uq_email_message_queue_key", "email_message", ["account_id", "queue_key"], unique=True)


def downgrade():
    op.drop_index("uq_email_message_queue_key", table_name="email_message")
    op.drop_index("ix_email_message_lease", table_name="email_message")
    op.drop_index("ix_email_message_outbox", table_name="email_message")
    # SQLite (3.35+) drops a column in place; no table is copied.
    for column in reversed(MESSAGE_COLUMNS):
        op.drop_column("email_message", column.name)
    for column in reversed(ACCOUNT_COLUMNS):
        op.drop_column("email_account", column.name)
