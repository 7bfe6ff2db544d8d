"""server-side login sessions (user_session); user.session_version retired; NFKC username keys

Revision ID: 0007
Revises: 0006
"""

import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _key(username: str) -> str:
    # As User.key_for at the time of this revision (a migration must not import the models).
    name = unicodedata.normalize("NFKC", username).strip()
    return unicodedata.normalize("NFKC", name.casefold())


def upgrade():
    op.create_table(
        "user_session",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("remote_addr", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_user_session_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_user_session")),
    )
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_session_user_id"), ["user_id"], unique=False)
    # Sessions now live in user_session; every cookie signed before this revision stops working.
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.drop_column("session_version")

    # Names are compared in NFKC from now on; re-key the existing ones unless two would collide.
    bind = op.get_bind()
    user = sa.table("user", sa.column("id", sa.Integer), sa.column("username", sa.String), sa.column("username_key", sa.String))
    rows = bind.execute(sa.select(user.c.id, user.c.username, user.c.username_key)).all()
    old = {row.username_key: row.id for row in rows}
    new = [(row.id, _key(row.username)) for row in rows if _key(row.username) != row.username_key]
    counts: dict[str, int] = {}
    for _, key in new:
        counts[key] = counts.get(key, 0) + 1
    for user_id, key in new:
        if counts[key] == 1 and old.get(key, user_id) == user_id:
            bind.execute(sa.update(user).where(user.c.id == user_id).values(username_key=key))


def downgrade():
    with op.batch_alter_table("user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("session_version", sa.Integer(), nullable=False, server_default="1"))
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_session_user_id"))
    op.drop_table("user_session")
