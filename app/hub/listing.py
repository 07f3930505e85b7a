"""File index reads for the REST API: whole-revision listings, folder listings, last commits.

Everything reads `tree_entries` (keyed by git tree sha) level by level, so a listing costs one
query per folder depth however many files there are (ARCHITECTURE.md §5). Trees are
content-addressed and never change, so the flattened listing of a root tree is cached in
process (`TreeCache`): paging through a 10,000-file tree re-reads nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from app.errors import EntryNotFound
from app.repos.models import Commit, TreeEntry
from app.repos.service import FileEntry, find_entry

IN_CHUNK = 500  # ids per `IN (...)`: far below SQLite's bound-parameter limit
CACHE_MAX_ENTRIES = 500_000  # files kept across all cached trees (~100 bytes each)
LAST_COMMIT_WALK = 200  # commits searched for the last change of a path before giving up

_COLUMNS = (
    TreeEntry.tree_sha,
    TreeEntry.name,
    TreeEntry.kind,
    TreeEntry.mode,
    TreeEntry.oid,
    TreeEntry.size,
    TreeEntry.lfs_oid,
    TreeEntry.lfs_pointer_size,
    TreeEntry.xet_hash,
)


# tree_sha, name, kind, mode, oid, size, lfs_oid, lfs_pointer_size, xet_hash
EntryRow = tuple[str, str, str, int, str, int, str | None, int | None, str | None]


class Listed(NamedTuple):
    """A listed file or folder: FileEntry's fields in a tuple, cheap to build by the 10,000."""

    path: str
    kind: str  # blob | tree
    mode: int
    oid: str
    size: int
    lfs_oid: str | None
    lfs_pointer_size: int | None
    xet_hash: str | None

    @property
    def is_dir(self) -> bool:
        return self.kind == "tree"


def _listed(row: EntryRow, path: str) -> Listed:
    return Listed(path, row[2], row[3], row[4], row[5], row[6], row[7], row[8])


def _rows(session: Session, tree_shas: Iterable[str]) -> Iterator[EntryRow]:
    shas = list(tree_shas)
    for start in range(0, len(shas), IN_CHUNK):
        chunk = shas[start : start + IN_CHUNK]
        yield from session.execute(select(*_COLUMNS).where(TreeEntry.tree_sha.in_(chunk))).tuples()


def walk_trees(session: Session, roots: Sequence[str]) -> dict[str, list[Listed]]:
    """Every entry (files and folders) below each root tree, sorted by path, one query per
    depth for all roots together. Subtrees shared between roots are read once."""
    found: dict[str, list[Listed]] = {root: [] for root in roots}
    frontier: dict[str, list[tuple[str, str]]] = {root: [(root, "")] for root in found}
    while frontier:
        deeper: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for row in _rows(session, frontier):
            for root, prefix in frontier[row[0]]:
                path = f"{prefix}/{row[1]}" if prefix else row[1]
                found[root].append(_listed(row, path))
                if row[2] == "tree":
                    deeper[row[4]].append((root, path))
        frontier = deeper
    for entries in found.values():
        entries.sort()
    return found


class TreeCache:
    """Flattened listings of root trees, least recently used first out, bounded by entries."""

    def __init__(self, max_entries: int = CACHE_MAX_ENTRIES):
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[Listed, ...]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get_many(self, session: Session, roots: Sequence[str]) -> dict[str, tuple[Listed, ...]]:
        out: dict[str, tuple[Listed, ...]] = {}
        with self._lock:
            for root in roots:
                hit = self._items.get(root)
                if hit is not None:
                    self._items.move_to_end(root)
                    out[root] = hit
        missing = [root for root in dict.fromkeys(roots) if root not in out]
        if missing:
            for root, entries in walk_trees(session, missing).items():
                out[root] = tuple(entries)
                self._put(root, out[root])
        return out

    def get(self, session: Session, root: str) -> tuple[Listed, ...]:
        return self.get_many(session, [root])[root]

    def _put(self, root: str, entries: tuple[Listed, ...]) -> None:
        if len(entries) > self.max_entries:
            return
        with self._lock:
            if root in self._items:
                return
            self._items[root] = entries
            self._size += len(entries)
            while self._size > self.max_entries:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)


def files_of(entries: Iterable[Listed]) -> list[Listed]:
    return [entry for entry in entries if entry.kind != "tree"]


def list_folder(
    session: Session, cache: TreeCache, root_tree: str, path: str, *, recursive: bool
) -> Sequence[Listed | FileEntry]:
    """Entries under path (relative to the repo root); a file path lists that file alone;
    EntryNotFound when nothing is there (hf-protocol.md §5.3)."""
    path = path.strip("/")
    start = find_entry(session, root_tree, path)
    if start is None:
        raise EntryNotFound(f"Entry not found: {path}")
    if not start.is_dir:
        return [start]
    if recursive:
        everything = cache.get(session, root_tree)
        if not path:
            return everything
        prefix = path + "/"
        return [entry for entry in everything if entry.path.startswith(prefix)]
    query = select(*_COLUMNS).where(TreeEntry.tree_sha == start.oid).order_by(TreeEntry.name)
    rows = session.execute(query).tuples()
    return [_listed(row, f"{path}/{row[1]}" if path else row[1]) for row in rows]


def lookup_paths(session: Session, root_tree: str, paths: Iterable[str]) -> dict[str, Listed]:
    """The entries at these paths of one tree (missing ones left out), one query per depth."""
    wanted = {p.strip("/") for p in paths if p.strip("/")}
    found: dict[str, Listed] = {}
    # (tree sha, name) -> the paths walking through it, with how deep that name is in each
    pending: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for path in wanted:
        pending[(root_tree, path.split("/")[0])].append((path, 0))
    while pending:
        keys = list(pending)
        rows: list[EntryRow] = []
        for start in range(0, len(keys), IN_CHUNK):
            chunk = keys[start : start + IN_CHUNK]
            query = select(*_COLUMNS).where(tuple_(TreeEntry.tree_sha, TreeEntry.name).in_(chunk))
            rows.extend(session.execute(query).tuples())
        deeper: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
        for row in rows:
            for path, depth in pending[(row[0], row[1])]:
                parts = path.split("/")
                if depth == len(parts) - 1:
                    found[path] = _listed(row, path)
                elif row[2] == "tree":
                    deeper[(row[4], parts[depth + 1])].append((path, depth + 1))
        pending = deeper
    return found


@dataclass(frozen=True)
class LastCommit:
    sha: str
    title: str
    date: Any  # datetime


def last_commits(
    session: Session, head: str, entries: Sequence[Listed | FileEntry]
) -> dict[str, LastCommit]:
    """For each entry, the newest commit (following first parents from head) that changed it.

    Walks back at most LAST_COMMIT_WALK commits, comparing each path's oid with the parent's;
    paths still unchanged when the walk stops get no lastCommit (it is optional, §5.3).
    """
    pending = {entry.path: entry.oid for entry in entries if entry.path}
    result: dict[str, LastCommit] = {}
    commit = session.get(Commit, head)
    for _ in range(LAST_COMMIT_WALK):
        if commit is None or not pending:
            break
        parent = session.get(Commit, commit.parents[0]) if commit.parents else None
        changed = list(pending)
        if parent is not None and parent.tree_sha == commit.tree_sha:
            changed = []
        elif parent is not None:
            before = lookup_paths(session, parent.tree_sha, pending)
            changed = [p for p, oid in pending.items() if p not in before or before[p].oid != oid]
        for path in changed:
            result[path] = LastCommit(commit.sha, commit.title, commit.authored_at)
            del pending[path]
        commit = parent
    return result
