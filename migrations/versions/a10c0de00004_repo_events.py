"""repo events: the durable log of ref moves and its consumers' positions

Revision ID: a10c0de00004
Revises: a10c0de00003
Create Date: 2026-12-04 17:59:48

`repo_events` is written by the ref service in the transaction that moves a ref;
`event_cursors` records how far each follow-up consumer (pickle scans, ...) has read it.
Refs moved before this revision have no event: nothing replays them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db.base

revision: str = "a10c0de00004"
down_revision: str | None = "a10c0de00003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "event_cursors",
        sa.Column("consumer", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("updated_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name=op.f("pk_event_cursors")),
    )
    op.create_table(
        "repo_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("repo_uid", sa.String(length=32), nullable=False),
        sa.Column("repo_type", sa.String(length=16), nullable=False),
        sa.Column("repo", sa.String(length=200), nullable=False),
        sa.Column("ref", sa.String(length=255), nullable=False),
        sa.Column("old", sa.String(length=40), nullable=True),
        sa.Column("new", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=96), nullable=True),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repo_events")),
    )
    with op.batch_alter_table("repo_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repo_events_repo_uid"), ["repo_uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("repo_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repo_events_repo_uid"))

    op.drop_table("repo_events")
    op.drop_table("event_cursors")
