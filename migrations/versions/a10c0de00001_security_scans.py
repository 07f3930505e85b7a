"""security scans of pickle files

Revision ID: a10c0de00001
Revises: 7a3c0de5f1e2
Create Date: 2026-11-26 13:40:00
"""

from collections.abc import Sequence

revision: str = "a10c0de00001"
down_revision: str | None = "7a3c0de5f1e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
