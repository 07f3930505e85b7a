"""repo uids: an identifier that never recurs, for the credentials derived from a repo

Revision ID: a10c0de00005
Revises: a10c0de00004
Create Date: 2026-12-04 18:20:00

Xet tokens and signed LFS URLs named a repo by its database id, which SQLite gives again to
the next repo after a deletion; they now name it by `uid` (`app.repos.grants`). Existing repos
get a random uid here; credentials issued before the upgrade stop working (they last an hour).
"""

import secrets
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a10c0de00005"
down_revision: str | None = "a10c0de00004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sa.String(length=32), nullable=True))
    repos = sa.table("repos", sa.column("id", sa.Integer), sa.column("uid", sa.String))
    connection = op.get_bind()
    for (repo_id,) in connection.execute(sa.select(repos.c.id)).all():
        connection.execute(
            repos.update().where(repos.c.id == repo_id).values(uid=secrets.token_hex(16))
        )
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.alter_column("uid", existing_type=sa.String(length=32), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_repos_uid"), ["uid"])


def downgrade() -> None:
    with op.batch_alter_table("repos", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_repos_uid"), type_="unique")
        batch_op.drop_column("uid")
