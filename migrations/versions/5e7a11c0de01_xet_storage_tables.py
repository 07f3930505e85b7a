"""xet storage tables

Revision ID: 5e7a11c0de01
Revises: 1c76076efb53
Create Date: 2026-11-26 10:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "5e7a11c0de01"
down_revision: str | None = "1c76076efb53"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "xet_xorbs",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("num_chunks", sa.Integer(), nullable=False),
        sa.Column("raw_bytes", sa.BigInteger(), nullable=False),
        sa.Column("stored_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunk_index", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )
    op.create_table(
        "xet_files",
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("hash"),
    )
    op.create_index("ix_xet_files_sha256", "xet_files", ["sha256"], unique=False)
    op.create_table(
        "xet_dedup_chunks",
        sa.Column("chunk_hash", sa.String(length=64), nullable=False),
        sa.Column("xorb_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("chunk_hash"),
    )
    with op.batch_alter_table("lfs_objects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("xet_hash", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_lfs_objects_xet_hash", ["xet_hash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lfs_objects", schema=None) as batch_op:
        batch_op.drop_index("ix_lfs_objects_xet_hash")
        batch_op.drop_column("xet_hash")
    op.drop_table("xet_dedup_chunks")
    op.drop_index("ix_xet_files_sha256", table_name="xet_files")
    op.drop_table("xet_files")
    op.drop_table("xet_xorbs")
