"""old names of moved repos

Revision ID: a10c0de00012
Revises: a10c0de00011
Create Date: 2026-12-07 23:55:00

A moved repo's old name answers with a redirect to its current name until a repo takes the
name again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "a10c0de00012"
down_revision: str | None = "a10c0de00011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repo_redirects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("namespace", sa.String(length=96), nullable=False),
        sa.Column("name", sa.String(length=96), nullable=False),
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_repo_redirects_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repo_redirects")),
        sa.UniqueConstraint("type", "namespace", "name", name=op.f("uq_repo_redirects_type")),
    )
    op.create_index(op.f("ix_repo_redirects_repo_id"), "repo_redirects", ["repo_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_repo_redirects_repo_id"), table_name="repo_redirects")
    op.drop_table("repo_redirects")
