"""fetch runs (the history of every fetch); the last Test connection of each account

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "fetch_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=10), nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stored", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("quarantined", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("total_on_server", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["email_account.id"], name=op.f("fk_fetch_run_account_id_email_account"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fetch_run")),
    )
    with op.batch_alter_table("fetch_run", schema=None) as batch_op:
        batch_op.create_index("ix_fetch_run_account_started", ["account_id", "started_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_fetch_run_job_id"), ["job_id"], unique=False)
    with op.batch_alter_table("email_account", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_test_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_test_incoming_ok", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("last_test_outgoing_ok", sa.Boolean(), nullable=True))


def downgrade():
    with op.batch_alter_table("email_account", schema=None) as batch_op:
        batch_op.drop_column("last_test_outgoing_ok")
        batch_op.drop_column("last_test_incoming_ok")
        batch_op.drop_column("last_test_at")
    with op.batch_alter_table("fetch_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fetch_run_job_id"))
        batch_op.drop_index("ix_fetch_run_account_started")
    op.drop_table("fetch_run")
