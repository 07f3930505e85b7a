"""Repo search for `GET /api/models|datasets|spaces` (hf-protocol.md §5.2).

Visibility, search, author, tag filters and the sort are all one SQL query, and pages are
keyset-paginated on (sort column, repo id): page N costs what page 1 costs, and a repo that
becomes visible while a client pages cannot be skipped or shown twice by an offset shift.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    bindparam,
    cast,
    false,
    func,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.auth.permissions import Principal
from app.errors import BadRequest
from app.http import decode_cursor, encode_cursor
from app.repos.models import Commit, Ref, Repo
from app.repos.service import DEFAULT_BRANCH, HEADS

# The client's `sort` values (it maps last_modified -> lastModified etc., §5.2) to columns.
SORT_COLUMNS: dict[str, tuple[InstrumentedAttribute[Any], ...]] = {
    "lastModified": (Repo.updated_at,),
    "createdAt": (Repo.created_at,),
    "downloads": (Repo.downloads,),
    "likes": (Repo.likes,),
    "trendingScore": (Repo.likes,),  # no trending score here; likes is the nearest signal
    "id": (Repo.namespace, Repo.name),
}
SORT_ALIASES = {
    "last_modified": "lastModified",
    "created_at": "createdAt",
    "trending_score": "trendingScore",
}
DEFAULT_SORT = "createdAt"


@dataclass
class RepoQuery:
    repo_type: str
    search: list[str] = field(default_factory=list)
    author: str | None = None
    filters: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    gated: bool | None = None
    sort: str | None = None
    direction: int = -1
    limit: int = 1000
    cursor: str | None = None


@dataclass
class RepoPage:
    repos: list[Repo]
    next_cursor: str | None


def search_repos(session: Session, principal: Principal, query: RepoQuery) -> RepoPage:
    columns = (*_sort_columns(query.sort), Repo.id)
    descending = query.direction < 0
    stmt = select(Repo).where(Repo.type == query.repo_type, _visible(session, principal))
    stmt = _filtered(stmt, query)
    after = decode_cursor(query.cursor)
    if after is not None:
        stmt = stmt.where(_after(columns, after, descending))
    order = [c.desc() if descending else c.asc() for c in columns]
    repos = list(session.scalars(stmt.order_by(*order).limit(query.limit + 1)))
    more = len(repos) > query.limit
    repos = repos[: query.limit]
    cursor = encode_cursor([_cursor_value(repos[-1], c) for c in columns]) if more else None
    return RepoPage(repos, cursor)


COUNT_CAP = 10_000  # a listing counts its matches up to here ("10,000+" beyond)


def count_repos(session: Session, principal: Principal, query: RepoQuery) -> int:
    """How many visible repos match the query, counted up to COUNT_CAP + 1 (a bounded scan)."""
    stmt = select(Repo.id).where(Repo.type == query.repo_type, _visible(session, principal))
    matches = _filtered(stmt, query).limit(COUNT_CAP + 1).subquery()
    return int(session.scalar(select(func.count()).select_from(matches)) or 0)


def _sort_columns(sort: str | None) -> tuple[InstrumentedAttribute[Any], ...]:
    name = SORT_ALIASES.get(sort or "", sort) or DEFAULT_SORT
    if name not in SORT_COLUMNS:
        choices = ", ".join(SORT_COLUMNS)
        raise BadRequest(f"invalid sort {sort!r}; use one of {choices}")
    return SORT_COLUMNS[name]


def _visible(session: Session, principal: Principal) -> ColumnElement[bool]:
    """Public repos, plus private ones in the caller's namespaces (ARCHITECTURE.md §6)."""
    if principal.is_admin:
        return true()
    namespaces = principal.namespaces(session, write=False)
    if not namespaces:
        return Repo.private.is_(false())
    return or_(Repo.private.is_(false()), Repo.namespace.in_(sorted(namespaces)))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _tag_clause(tag: str) -> ColumnElement[bool]:
    # Tags are a JSON list; match the quoted JSON string so `mit` does not match `license:mit`.
    needle = "%" + _like_escape(json.dumps(tag)) + "%"
    return cast(Repo.tags, Text).like(needle, escape="\\")


Row = TypeVar("Row")


def _filtered(stmt: Select[Row], query: RepoQuery) -> Select[Row]:
    full_id = Repo.namespace.concat("/").concat(Repo.name)
    for text in query.search:
        if text:
            stmt = stmt.where(full_id.ilike("%" + _like_escape(text) + "%", escape="\\"))
    if query.author:
        stmt = stmt.where(Repo.namespace == query.author)
    for tag in query.filters:
        stmt = stmt.where(_tag_clause(tag))
    if query.pipeline_tag:
        stmt = stmt.where(Repo.pipeline_tag == query.pipeline_tag)
    if query.gated is not None:
        stmt = stmt.where(Repo.gated.is_not(None) if query.gated else Repo.gated.is_(None))
    return stmt


def _cursor_value(repo: Repo, column: InstrumentedAttribute[Any]) -> Any:
    value = getattr(repo, column.key)
    return value.isoformat() if isinstance(value, datetime) else value


def _after(
    columns: tuple[InstrumentedAttribute[Any], ...], values: Any, descending: bool
) -> ColumnElement[bool]:
    """Rows strictly after the cursor in the sort order: `(a, b, id) < (:a, :b, :id)`."""
    if not isinstance(values, list) or len(values) != len(columns):
        raise BadRequest("invalid pagination cursor")
    try:
        bound = [
            bindparam(None, _parse(value, column), type_=column.type)
            for value, column in zip(values, columns, strict=True)
        ]
    except (TypeError, ValueError):
        raise BadRequest("invalid pagination cursor") from None
    left, right = tuple_(*columns), tuple_(*bound)
    return left < right if descending else left > right


def _parse(value: Any, column: InstrumentedAttribute[Any]) -> Any:
    if column.key in ("updated_at", "created_at"):
        return datetime.fromisoformat(str(value))
    if column.key in ("downloads", "likes", "id"):
        return int(value)
    return str(value)


def head_commits(session: Session, repos: list[Repo]) -> dict[int, tuple[str, str]]:
    """repo id -> (main's commit sha, its root tree), for a whole page in one query."""
    if not repos:
        return {}
    rows = session.execute(
        select(Ref.repo_id, Ref.commit_sha, Commit.tree_sha)
        .join(Commit, Commit.sha == Ref.commit_sha)
        .where(Ref.repo_id.in_([r.id for r in repos]), Ref.name == HEADS + DEFAULT_BRANCH)
    )
    return {repo_id: (sha, tree) for repo_id, sha, tree in rows}


def visible_counts(session: Session, principal: Principal, namespace: str) -> dict[str, int]:
    """How many repos of each type the caller sees in namespace (a profile's counts)."""
    rows = session.execute(
        select(Repo.type, func.count())
        .where(Repo.namespace == namespace, _visible(session, principal))
        .group_by(Repo.type)
    ).tuples()
    counts = {"model": 0, "dataset": 0, "space": 0}
    counts.update({kind: int(n) for kind, n in rows})
    return counts
