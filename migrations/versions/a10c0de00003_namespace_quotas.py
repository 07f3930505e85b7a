"""per-namespace storage quotas

Revision ID: a10c0de00003
Revises: a10c0de00002
Create Date: 2026-11-26 13:40:00

`namespace_quotas` holds the limits admins set; `repo_git_blobs` the regular files each repo
holds, filled here from the history already indexed (every tree of every recorded commit).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a10c0de00003"
down_revision: str | None = "a10c0de00002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Both SQLite and PostgreSQL run this recursive walk; UNION (not UNION ALL) ends it.
BACKFILL = """
INSERT INTO repo_git_blobs (repo_id, oid, size)
WITH RECURSIVE trees (repo_id, tree_sha) AS (
    SELECT repo_commits.repo_id, commits.tree_sha
    FROM repo_commits JOIN commits ON commits.sha = repo_commits.commit_sha
    UNION
    SELECT trees.repo_id, tree_entries.oid
    FROM trees JOIN tree_entries ON tree_entries.tree_sha = trees.tree_sha
    WHERE tree_entries.kind = 'tree'
)
SELECT trees.repo_id, tree_entries.oid, MAX(tree_entries.size)
FROM trees JOIN tree_entries ON tree_entries.tree_sha = trees.tree_sha
WHERE tree_entries.kind = 'blob' AND tree_entries.lfs_oid IS NULL
GROUP BY trees.repo_id, tree_entries.oid
"""


def upgrade() -> None:
    op.create_table(
        "namespace_quotas",
        sa.Column("namespace", sa.String(length=96), nullable=False),
        sa.Column("limit_bytes", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", name=op.f("pk_namespace_quotas")),
    )
    op.create_table(
        "repo_git_blobs",
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column("oid", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_repo_git_blobs_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("repo_id", "oid", name=op.f("pk_repo_git_blobs")),
    )
    op.execute(BACKFILL)


def downgrade() -> None:
    op.drop_table("repo_git_blobs")
    op.drop_table("namespace_quotas")
