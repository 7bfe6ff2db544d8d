"""OAuth 2.0 providers, and accounts that sign in with them (SASL XOAUTH2)

Revision ID: 0012
Revises: 0011
"""

from alembic import op
import sqlalchemy as sa

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "oauth_provider",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("name_key", sa.String(length=100), nullable=False, unique=True),
        sa.Column("flow", sa.String(length=20), nullable=False),
        sa.Column("client_id", sa.String(length=200), nullable=False),
        sa.Column("client_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.String(length=200), nullable=False),
        sa.Column("authority", sa.String(length=500), nullable=False),
        sa.Column("callback_path", sa.String(length=200), nullable=False),
        sa.Column("ca_cert_pem", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Plain columns only (see 0011): no batch operation copies email_account on SQLite.
    op.add_column(
        "email_account", sa.Column("auth_method", sa.String(length=10), nullable=False, server_default="password")
    )
    op.add_column("email_account", sa.Column("oauth_provider_id", sa.Integer(), nullable=True))
    op.add_column("email_account", sa.Column("oauth_token_cache_encrypted", sa.Text(), nullable=True))
    op.create_index("ix_email_account_oauth_provider_id", "email_account", ["oauth_provider_id"])


def downgrade():
    op.drop_index("ix_email_account_oauth_provider_id", table_name="email_account")
    op.drop_column("email_account", "oauth_token_cache_encrypted")
    op.drop_column("email_account", "oauth_provider_id")
    op.drop_column("email_account", "auth_method")
    op.drop_table("oauth_provider")
