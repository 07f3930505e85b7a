"""Which objects belong to a repo's history, found through the file index (no object reads).

Objects are stored once for every repo (content-addressed), so "this sha exists" says nothing
about who may read it; what a caller may use is what the repo's own commits reach.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.repos.models import Commit, RepoCommit, TreeEntry
from app.repos.service import FileEntry

IN_CHUNK = 500  # shas per `IN (…)` query, under SQLite's bound-parameter limit


def chunks(items: Iterable[str], size: int = IN_CHUNK) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def linked(
    session: Session, column: InstrumentedAttribute[str], repo_id: int, values: Iterable[str]
) -> set[str]:
    """Those of values that a per-repo link table (`repo_commits`, `repo_lfs_objects`) holds
    for the repo in column, queried in chunks."""
    table = column.class_
    found: set[str] = set()
    for batch in chunks(values):
        found.update(
            session.scalars(select(column).where(table.repo_id == repo_id, column.in_(batch)))
        )
    return found


def known_commits(session: Session, repo_id: int, shas: Iterable[str]) -> set[str]:
    return linked(session, RepoCommit.commit_sha, repo_id, shas)


class History:
    """Finds objects in this repo's history through the file index, breadth first: first
    from the trees the push builds on (renames, moves), then from every commit (reverts)."""

    def __init__(self, session: Session, repo_id: int):
        self.session = session
        self.repo_id = repo_id
        self.seen: set[str] = set()

    def find(self, wanted: set[str], boundary: set[str]) -> dict[str, TreeEntry | None]:
        found: dict[str, TreeEntry | None] = {}
        if not wanted:
            return found
        for sha in known_commits(self.session, self.repo_id, wanted):
            found[sha] = None  # a commit of the repo used as a delta base
        for roots in (self._root_trees(boundary), self._root_trees(None)):
            self._search(roots, wanted, found)
            if wanted <= set(found):
                break
        return found

    def _root_trees(self, commits: set[str] | None) -> set[str]:
        query = select(Commit.tree_sha).join(RepoCommit, RepoCommit.commit_sha == Commit.sha)
        query = query.where(RepoCommit.repo_id == self.repo_id)
        if commits is None:
            return set(self.session.scalars(query))
        roots: set[str] = set()
        for batch in chunks(commits):
            roots.update(self.session.scalars(query.where(Commit.sha.in_(batch))))
        return roots

    def _search(
        self, roots: set[str], wanted: set[str], found: dict[str, TreeEntry | None]
    ) -> None:
        frontier = roots - self.seen
        for sha in frontier & wanted:
            found.setdefault(sha, None)
        while frontier and not wanted <= set(found):
            self.seen |= frontier
            level: set[str] = set()
            for batch in chunks(frontier):
                for row in self.session.scalars(
                    select(TreeEntry).where(TreeEntry.tree_sha.in_(batch))
                ):
                    if row.oid in wanted:
                        found.setdefault(row.oid, row)
                    if row.kind == "tree" and row.oid not in self.seen:
                        level.add(row.oid)
            frontier = level


def changed_files(session: Session, old_tree: str | None, new_tree: str) -> Iterator[FileEntry]:
    """The files of new_tree that old_tree does not hold at the same path with the same
    content (all of them when old_tree is None), read from the file index level by level and
    never descending into a folder both trees share."""
    frontier: list[tuple[str | None, str, str]] = [(old_tree, new_tree, "")]
    while frontier:
        shas = {sha for pair in frontier for sha in pair[:2] if sha is not None}
        children: dict[str, list[TreeEntry]] = {sha: [] for sha in shas}
        for batch in chunks(shas):
            for row in session.scalars(select(TreeEntry).where(TreeEntry.tree_sha.in_(batch))):
                children[row.tree_sha].append(row)
        level: list[tuple[str | None, str, str]] = []
        for old, new, prefix in frontier:
            before = {row.name: row for row in children[old]} if old is not None else {}
            for row in children[new]:
                prev = before.get(row.name)
                if prev is not None and (prev.kind, prev.oid) == (row.kind, row.oid):
                    continue
                if row.kind == "tree":
                    base = prev.oid if prev is not None and prev.kind == "tree" else None
                    level.append((base, row.oid, f"{prefix}{row.name}/"))
                else:
                    yield FileEntry.of(row, f"{prefix}{row.name}")
        frontier = level


FILE_HISTORY_WALK = 5000  # first-parent ancestors searched for one page of a path's history


def path_history(
    session: Session, head: str, path: str, *, limit: int, offset: int = 0
) -> tuple[list[Commit], bool]:
    """The commits along first parents from head that added, changed or removed path (a
    file or a folder), newest first: (page, has_more). Subtrees shared by neighbouring
    commits are looked up once, so a walk costs about one query per changed level; it stops
    after FILE_HISTORY_WALK ancestors."""
    names = [name for name in path.strip("/").split("/") if name]
    memo: dict[tuple[str, str], str | None] = {}

    def oid_at(tree: str) -> str | None:
        current: str | None = tree
        for name in names:
            assert current is not None
            key = (current, name)
            if key not in memo:
                memo[key] = session.scalar(
                    select(TreeEntry.oid).where(
                        TreeEntry.tree_sha == current, TreeEntry.name == name
                    )
                )
            current = memo[key]
            if current is None:
                return None
        return current

    wanted = offset + limit + 1
    found: list[Commit] = []
    commit = session.get(Commit, head)
    mine = oid_at(commit.tree_sha) if commit is not None else None
    walked = 0
    while commit is not None and len(found) < wanted and walked < FILE_HISTORY_WALK:
        parent = session.get(Commit, commit.parents[0]) if commit.parents else None
        theirs = oid_at(parent.tree_sha) if parent is not None else None
        if mine != theirs:
            found.append(commit)
        commit, mine, walked = parent, theirs, walked + 1
    return found[offset : offset + limit], len(found) > offset + limit
