"""when a repo was given each large object

Revision ID: a10c0de00015
Revises: a10c0de00014
Create Date: 2026-12-08 02:00:00

`repo_lfs_objects.created_at`: the `pushedAt` of `list_lfs_files`. Links made before this
take the time the object was first stored.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "a10c0de00015"
down_revision: str | None = "a10c0de00014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repo_lfs_objects") as batch:
        batch.add_column(sa.Column("created_at", UTCDateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE repo_lfs_objects SET created_at = (SELECT lfs_objects.created_at "
        "FROM lfs_objects WHERE lfs_objects.oid = repo_lfs_objects.oid)"
    )


def downgrade() -> None:
    with op.batch_alter_table("repo_lfs_objects") as batch:
        batch.drop_column("created_at")
