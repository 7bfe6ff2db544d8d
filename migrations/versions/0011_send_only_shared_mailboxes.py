"""send-only / receive-only accounts (an empty server host: nothing to add) and shared mailboxes

Revision ID: 0011
Revises: 0010
"""

from alembic import op
import sqlalchemy as sa

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    # Plain columns only: a batch operation on SQLite copies email_account, and dropping the old table
    # with foreign keys on deletes every row referring to it (see tests/test_migrations.py).
    op.add_column("email_account", sa.Column("primary_account_id", sa.Integer(), nullable=True))
    op.add_column(
        "email_account", sa.Column("login_format", sa.String(length=10), nullable=False, server_default="plain")
    )
    op.create_index("ix_email_account_primary_account_id", "email_account", ["primary_account_id"])


def downgrade():
    op.drop_index("ix_email_account_primary_account_id", table_name="email_account")
    op.drop_column("email_account", "login_format")
    op.drop_column("email_account", "primary_account_id")
