"""File index reads for the REST API: whole-revision listings, folder listings, path lookups.

Everything reads `tree_entries` (keyed by git tree sha) level by level, so a listing costs one
query per folder depth however many files there are (ARCHITECTURE.md §5). Trees are
content-addressed and never change, so the flattened listing of a root tree is cached in
process (`TreeCache`): paging through a 10,000-file tree re-reads nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from app.errors import EntryNotFound
from app.repos.models import TreeEntry
from app.repos.service import FileEntry, find_entry

IN_CHUNK = 500  # ids per `IN (...)`: far below SQLite's bound-parameter limit
CACHE_MAX_ENTRIES = 300_000  # listed entries kept across all cached trees (~250 bytes each)
CACHE_MAX_RENDERED = 64 * 1024 * 1024  # bytes of JSON kept rendered

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
EntryRow = Row[str, str, str, int, str, int, str | None, int | None, str | None]


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
        yield from session.execute(select(*_COLUMNS).where(TreeEntry.tree_sha.in_(chunk)))


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


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
T = TypeVar("T")


class _Lru(Generic[K, V]):
    """A thread-safe LRU map bounded by the total weight of its values."""

    def __init__(self, max_weight: int, weigh: Callable[[V], int]):
        self.max_weight = max_weight
        self.weigh = weigh
        self._items: OrderedDict[K, V] = OrderedDict()
        self._weight = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
            return hit

    def put(self, key: K, value: V) -> None:
        weight = self.weigh(value)
        if weight > self.max_weight:
            return
        with self._lock:
            if key in self._items:
                return
            self._items[key] = value
            self._weight += weight
            while self._weight > self.max_weight:
                _, evicted = self._items.popitem(last=False)
                self._weight -= self.weigh(evicted)


class TreeCache:
    """Flattened listings of root trees, and JSON already rendered from them.

    Both are functions of content-addressed trees, so they never go stale; least recently
    used ones leave first. Rendered JSON is cached because serializing 10,000 entries costs
    more than reading them (hf-protocol.md §5.3 pages of 1,000 entries are sliced from it).
    """

    def __init__(
        self, max_entries: int = CACHE_MAX_ENTRIES, max_rendered: int = CACHE_MAX_RENDERED
    ):
        self._trees: _Lru[str, tuple[Listed, ...]] = _Lru(max_entries, len)
        self._rendered: _Lru[Hashable, Any] = _Lru(max_rendered, _weight_of_rendered)

    def get_many(self, session: Session, roots: Sequence[str]) -> dict[str, tuple[Listed, ...]]:
        out: dict[str, tuple[Listed, ...]] = {}
        for root in roots:
            hit = self._trees.get(root)
            if hit is not None:
                out[root] = hit
        missing = [root for root in dict.fromkeys(roots) if root not in out]
        if missing:
            for root, entries in walk_trees(session, missing).items():
                out[root] = tuple(entries)
                self._trees.put(root, out[root])
        return out

    def get(self, session: Session, root: str) -> tuple[Listed, ...]:
        return self.get_many(session, [root])[root]

    def rendered(self, key: Hashable, render: Callable[[], T]) -> T:
        """What render() gives for key, made once; key must name immutable inputs only
        (tree shas, paths, offsets), never a branch name."""
        hit: T | None = self._rendered.get(key)
        if hit is None:
            hit = render()
            self._rendered.put(key, hit)
        return hit


def _weight_of_rendered(value: Any) -> int:
    """Bytes, or a tuple holding bytes (a page body and what follows it)."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, tuple):
        return sum(len(part) for part in value if isinstance(part, bytes)) + 64
    return 64


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
    rows = session.execute(query)
    return [_listed(row, f"{path}/{row[1]}" if path else row[1]) for row in rows]


def rows_at(session: Session, keys: Iterable[tuple[str, str]]) -> list[EntryRow]:
    """The rows named by (tree sha, name) pairs: one `tree_sha IN … AND name IN …` query per
    IN_CHUNK trees, the few extra rows of the cross product dropped here."""
    wanted = set(keys)
    trees = sorted({tree for tree, _ in wanted})
    names = sorted({name for _, name in wanted})
    rows: list[EntryRow] = []
    for start in range(0, len(trees), IN_CHUNK):
        query = select(*_COLUMNS).where(
            TreeEntry.tree_sha.in_(trees[start : start + IN_CHUNK]), TreeEntry.name.in_(names)
        )
        rows.extend(row for row in session.execute(query) if (row[0], row[1]) in wanted)
    return rows


def lookup_paths(session: Session, root_tree: str, paths: Iterable[str]) -> dict[str, Listed]:
    """The entries at these paths of one tree (missing ones left out), one query per depth."""
    found: dict[str, Listed] = {}
    # (tree sha, name) -> the paths walking through it, with how deep that name is in each
    pending: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for path in {p.strip("/") for p in paths if p.strip("/")}:
        pending[(root_tree, path.split("/")[0])].append((path, 0))
    while pending:
        deeper: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
        for row in rows_at(session, pending):
            for path, depth in pending[(row[0], row[1])]:
                parts = path.split("/")
                if depth == len(parts) - 1:
                    found[path] = _listed(row, path)
                elif row[2] == "tree":
                    deeper[(row[4], parts[depth + 1])].append((path, depth + 1))
        pending = deeper
    return found
