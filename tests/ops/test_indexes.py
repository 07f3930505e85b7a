"""Every listing and lookup the API serves from the database reads an index, never a scan of
the whole table (issue 11): checked on the query plans of both databases.

PostgreSQL is asked with `enable_seqscan = off`: a query that *can* use an index then does,
even on the tiny tables of a test, and one that cannot still shows `Seq Scan`. SQLite's plan
says `SCAN t` (whole table) unless an index serves it (`SEARCH t USING …`, or `SCAN t USING
INDEX` when an index gives the listing's order, which reads only the page asked for).
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, Select, desc, select, text

from app.auth.models import Membership, Token
from app.repos.models import Commit, LfsObject, Ref, Repo, RepoCommit, RepoLfsObject, TreeEntry
from tests.live import LiveServer

SHA = "0" * 40
OID = "0" * 64

QUERIES: dict[str, Select[tuple[object]]] = {
    "token by digest (every authenticated request)": select(Token).where(Token.digest == OID),
    "memberships of a user": select(Membership).where(Membership.user_id == 1),
    "repo by type and id": select(Repo).where(
        Repo.type == "model", Repo.namespace == "a", Repo.name == "b"
    ),
    "repos of an author": select(Repo).where(Repo.type == "model", Repo.namespace == "a").limit(50),
    "repo listing by downloads": select(Repo)
    .where(Repo.type == "model")
    .order_by(desc(Repo.downloads), desc(Repo.id))
    .limit(20),
    "repo listing by last update": select(Repo)
    .where(Repo.type == "model")
    .order_by(desc(Repo.updated_at), desc(Repo.id))
    .limit(20),
    "repo listing by likes": select(Repo)
    .where(Repo.type == "model")
    .order_by(desc(Repo.likes), desc(Repo.id))
    .limit(20),
    "repo listing by creation": select(Repo)
    .where(Repo.type == "model")
    .order_by(desc(Repo.created_at), desc(Repo.id))
    .limit(20),
    "ref of a repo": select(Ref).where(Ref.repo_id == 1, Ref.name == "refs/heads/main"),
    "refs of a repo": select(Ref).where(Ref.repo_id == 1),
    "commit by sha": select(Commit).where(Commit.sha == SHA),
    "commit of a repo": select(RepoCommit).where(
        RepoCommit.repo_id == 1, RepoCommit.commit_sha == SHA
    ),
    "tree listing": select(TreeEntry).where(TreeEntry.tree_sha == SHA),
    "tree entry by path": select(TreeEntry).where(
        TreeEntry.tree_sha == SHA, TreeEntry.name == "config.json"
    ),
    "LFS object given to a repo": select(LfsObject.size)
    .join(RepoLfsObject, RepoLfsObject.oid == LfsObject.oid)
    .where(RepoLfsObject.repo_id == 1, LfsObject.oid == OID),
}


def plan(engine: Engine, query: Select[tuple[object]]) -> str:
    compiled = query.compile(engine, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET enable_seqscan = off"))
            rows = conn.execute(text(f"EXPLAIN {compiled}")).scalars()
            return "\n".join(rows)
        rows = conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return "\n".join(str(row[-1]) for row in rows)


def full_scans(engine: Engine, text_plan: str) -> list[str]:
    if engine.dialect.name == "postgresql":
        return re.findall(r"Seq Scan on (\w+)", text_plan)
    return re.findall(r"\bSCAN (\w+)(?! USING)", text_plan)


@pytest.mark.parametrize("name", list(QUERIES))
def test_query_reads_an_index(server: LiveServer, name: str) -> None:
    engine = server.app().state.engine
    text_plan = plan(engine, QUERIES[name])
    assert not full_scans(engine, text_plan), f"{name}:\n{text_plan}"


def test_the_check_sees_a_full_scan(server: LiveServer) -> None:
    """An unindexed filter is reported, so the test above can fail."""
    engine = server.app().state.engine
    query = select(Commit).where(Commit.title == "nothing indexes this")
    assert full_scans(engine, plan(engine, query)) == ["commits"]
