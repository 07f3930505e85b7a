"""per-namespace storage quotas

Revision ID: a10c0de00003
Revises: a10c0de00002
Create Date: 2026-11-26 13:40:00
"""

from collections.abc import Sequence

revision: str = "a10c0de00003"
down_revision: str | None = "a10c0de00002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
