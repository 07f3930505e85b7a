"""repo likes

Revision ID: a10c0de00011
Revises: a10c0de00010
Create Date: 2026-12-07 23:45:00

Who likes which repo; `repos.likes` is recounted from these rows with each like.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "a10c0de00011"
down_revision: str | None = "a10c0de00010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repo_likes",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"], ["repos.id"], name=op.f("fk_repo_likes_repo_id_repos"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_repo_likes_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "repo_id", name=op.f("pk_repo_likes")),
    )
    op.create_index(op.f("ix_repo_likes_repo_id"), "repo_likes", ["repo_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_repo_likes_repo_id"), table_name="repo_likes")
    op.drop_table("repo_likes")
