"""git annotated tags

Revision ID: f822d8b2498a
Revises: 5e7a11c0de01
Create Date: 2026-11-26 10:44:08.625826
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f822d8b2498a"
down_revision: str | None = "5e7a11c0de01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "git_tags",
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("tag_sha", sa.String(length=40), nullable=False),
        sa.Column("commit_sha", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"], ["repos.id"], name=op.f("fk_git_tags_repo_id_repos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("repo_id", "name", name=op.f("pk_git_tags")),
    )


def downgrade() -> None:
    op.drop_table("git_tags")
