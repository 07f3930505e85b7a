"""discussions and pull requests: threads and their events

Revision ID: a10c0de00010
Revises: a10c0de00009
Create Date: 2026-12-07 23:40:00

A thread of a repo (numbered per repo, discussions and pull requests sharing the numbers);
for a pull request its target branch, the commit it started from and its merge commit. Its
events: comments (with every version), status and title changes, commits pushed to it.
Pull requests opened before this revision are only their refs `refs/pr/N`; their numbers stay
taken.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "a10c0de00010"
down_revision: str | None = "a10c0de00009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "discussions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column("num", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("is_pull_request", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("target_branch", sa.String(length=300), nullable=True),
        sa.Column("base_sha", sa.String(length=40), nullable=True),
        sa.Column("merge_commit", sa.String(length=40), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_discussions_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["repo_id"], ["repos.id"], name=op.f("fk_discussions_repo_id_repos"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discussions")),
        sa.UniqueConstraint("repo_id", "num", name=op.f("uq_discussions_repo_id")),
    )
    op.create_index("ix_discussions_repo_status", "discussions", ["repo_id", "status"])
    op.create_index(op.f("ix_discussions_author_id"), "discussions", ["author_id"])
    op.create_table(
        "discussion_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=24), nullable=False),
        sa.Column("discussion_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("hidden", sa.Boolean(), nullable=False),
        sa.Column("hidden_by", sa.String(length=96), nullable=True),
        sa.Column("commit_oid", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["author_id"],
            ["users.id"],
            name=op.f("fk_discussion_events_author_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["discussion_id"],
            ["discussions.id"],
            name=op.f("fk_discussion_events_discussion_id_discussions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discussion_events")),
        sa.UniqueConstraint("uid", name=op.f("uq_discussion_events_uid")),
        sa.UniqueConstraint(
            "discussion_id", "commit_oid", name=op.f("uq_discussion_events_discussion_id")
        ),
    )
    op.create_index(
        op.f("ix_discussion_events_discussion_id"), "discussion_events", ["discussion_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_discussion_events_discussion_id"), table_name="discussion_events")
    op.drop_table("discussion_events")
    op.drop_index(op.f("ix_discussions_author_id"), table_name="discussions")
    op.drop_index("ix_discussions_repo_status", table_name="discussions")
    op.drop_table("discussions")
