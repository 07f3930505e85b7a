"""`INSERT … ON CONFLICT DO NOTHING` for both SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(
    session: Session,
    model: type[Any],
    rows: Sequence[Mapping[str, object]],
    conflict_columns: Sequence[str],
) -> None:
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    batch = 500  # stays under SQLite's bound-parameter limit
    for start in range(0, len(rows), batch):
        statement = module.insert(model).values(list(rows[start : start + batch]))
        session.execute(statement.on_conflict_do_nothing(index_elements=list(conflict_columns)))
