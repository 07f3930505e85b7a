"""derived model facts: transformersInfo and safetensors parameter counts of the default branch

Revision ID: a10c0de00007
Revises: a10c0de00006
Create Date: 2026-12-04 19:00:00

Filled by the `model-facts` consumer of ref moves (`app.cards.derived`); repos pushed before
this revision get theirs with their next commit to main.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a10c0de00007"
down_revision: str | None = "a10c0de00006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("derived", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.drop_column("derived")
