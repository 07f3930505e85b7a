"""access requests to gated repos

Revision ID: a10c0de00009
Revises: a10c0de00008
Create Date: 2026-12-07 23:20:00

One row per (repo, user): the request and its answers to the gate form, its status (pending,
accepted, rejected), the rejection reason and who decided. Rows go with their repo and user.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "a10c0de00009"
down_revision: str | None = "a10c0de00008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "access_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("decided_by", sa.String(length=96), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["repo_id"],
            ["repos.id"],
            name=op.f("fk_access_requests_repo_id_repos"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_access_requests_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_requests")),
        sa.UniqueConstraint("repo_id", "user_id", name=op.f("uq_access_requests_repo_id")),
    )
    op.create_index("ix_access_requests_repo_status", "access_requests", ["repo_id", "status"])
    op.create_index(op.f("ix_access_requests_user_id"), "access_requests", ["user_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_access_requests_user_id"), table_name="access_requests")
    op.drop_index("ix_access_requests_repo_status", table_name="access_requests")
    op.drop_table("access_requests")
