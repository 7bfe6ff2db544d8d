"""the outbox: queue state, leases, per-recipient results; per-account send settings

Revision ID: 0009
Revises: 0008
"""

from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("email_account") as batch:
        batch.add_column(sa.Column("max_send_attempts", sa.Integer(), nullable=False, server_default="3"))
        batch.add_column(sa.Column("send_connections", sa.Integer(), nullable=False, server_default="1"))
        batch.add_column(sa.Column("send_per_minute", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("append_to_sent", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("email_message") as batch:
        batch.add_column(sa.Column("send_after", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("lease_owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("send_stage", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("possibly_sent", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("envelope", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("accepted", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("queue_key", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("draft_fields", sa.JSON(), nullable=True))
        batch.create_index("ix_email_message_outbox", ["account_id", "status", "id"])
        batch.create_index("ix_email_message_lease", ["status", "lease_until"])
        batch.create_unique_constraint("uq_email_message_queue_key", ["account_id", "queue_key"])


def downgrade():
    with op.batch_alter_table("email_message") as batch:
        batch.drop_constraint("uq_email_message_queue_key", type_="unique")
        batch.drop_index("ix_email_message_lease")
        batch.drop_index("ix_email_message_outbox")
        for column in ("draft_fields", "queue_key", "accepted", "envelope", "possibly_sent", "send_stage", "lease_until",
                       "lease_owner", "send_after"):
            batch.drop_column(column)
    with op.batch_alter_table("email_account") as batch:
        for column in ("append_to_sent", "send_per_minute", "send_connections", "max_send_attempts"):
            batch.drop_column(column)
