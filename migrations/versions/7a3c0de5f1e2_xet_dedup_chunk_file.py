"""xet dedup chunks name their file

Revision ID: 7a3c0de5f1e2
Revises: f822d8b2498a
Create Date: 2026-11-26 11:25:00.000000

A dedup answer describes every xorb of the file a chunk was registered with, so the index
records that file. The index only speeds up uploads, so existing rows are dropped rather than
back-filled.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7a3c0de5f1e2"
down_revision: str | None = "f822d8b2498a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("DELETE FROM xet_dedup_chunks")
    with op.batch_alter_table("xet_dedup_chunks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_hash", sa.String(length=64), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("xet_dedup_chunks", schema=None) as batch_op:
        batch_op.drop_column("file_hash")
