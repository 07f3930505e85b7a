"""repo listing sort indexes

Revision ID: 1c76076efb53
Revises: 0001
Create Date: 2026-11-25 00:12:57.326106
"""

from collections.abc import Sequence

from alembic import op

revision: str = "1c76076efb53"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.create_index("ix_repos_type_created", ["type", "created_at"], unique=False)
        batch_op.create_index("ix_repos_type_likes", ["type", "likes"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.drop_index("ix_repos_type_likes")
        batch_op.drop_index("ix_repos_type_created")
