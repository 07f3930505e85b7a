"""`INSERT … ON CONFLICT` for both SQLite and PostgreSQL."""

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
    batch = 500  # stays under SQLite's bound-parameter limit
    for start in range(0, len(rows), batch):
        statement = dialect_insert(session, model).values(list(rows[start : start + batch]))
        session.execute(statement.on_conflict_do_nothing(index_elements=list(conflict_columns)))


def dialect_insert(session: Session, model: type[Any]) -> Any:
    """The INSERT of the session's database dialect, which has `on_conflict_do_*`."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)
