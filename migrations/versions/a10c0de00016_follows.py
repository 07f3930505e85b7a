"""follows

Revision ID: a10c0de00016
Revises: a10c0de00015
Create Date: 2026-12-08 02:20:00

Who follows which user or organization (by name: they share one namespace).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "a10c0de00016"
down_revision: str | None = "a10c0de00015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("follower_id", sa.Integer(), nullable=False),
        sa.Column("followed", sa.String(length=96), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["follower_id"],
            ["users.id"],
            name=op.f("fk_follows_follower_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("follower_id", "followed", name=op.f("pk_follows")),
    )
    op.create_index(op.f("ix_follows_followed"), "follows", ["followed"])


def downgrade() -> None:
    op.drop_index(op.f("ix_follows_followed"), table_name="follows")
    op.drop_table("follows")
