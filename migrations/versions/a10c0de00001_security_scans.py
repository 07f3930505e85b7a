"""security scans of pickle files

Revision ID: a10c0de00001
Revises: 7a3c0de5f1e2
Create Date: 2026-11-26 13:40:00

`pickle_scans` holds one verdict per file content (LFS sha256 or git blob sha1). Files committed
before this revision have none: `model_info` reports `scansDone: false` and inference refuses
their pickles until `atrium scan-pickles` scans them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.db.base import UTCDateTime

revision: str = "a10c0de00001"
down_revision: str | None = "7a3c0de5f1e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pickle_scans",
        sa.Column("oid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("imports", sa.JSON(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("scanner", sa.String(length=64), nullable=False),
        sa.Column("scanned_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("oid", name=op.f("pk_pickle_scans")),
    )


def downgrade() -> None:
    op.drop_table("pickle_scans")
