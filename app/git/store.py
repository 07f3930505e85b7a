"""A dulwich repository view over Atrium's storage: objects from the blob store, refs from the DB.

dulwich's protocol handlers (`dulwich.server`) only need a `BackendRepo`: an object store and a
refs container. Objects are the loose objects that `app.repos.gitobjects` writes under
`git/<sha1>`; refs are a snapshot of the `refs` table taken when the request starts, so one
request sees one consistent set of refs while pushes and API commits move them (ARCHITECTURE.md
§5). Writes never go through this view: a push is applied by `app.git.push` with the same
compare-and-swap as API commits.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from threading import Lock
from typing import Any

from dulwich.object_store import BaseObjectStore, MissingObjectFinder
from dulwich.objects import ObjectID, RawObjectID, ShaFile, object_class, sha_to_hex
from dulwich.pack import Pack, UnpackedObject
from dulwich.refs import DictRefsContainer, Ref
from dulwich.repo import BaseRepo

from app.blobs import BlobStore
from app.blobs.base import BlobNotFound, read_all
from app.blobs.keys import git_object_key
from app.repos.gitobjects import store_objects
from app.repos.service import DEFAULT_BRANCH, HEADS

HEAD_SYMREF = b"ref: " + (HEADS + DEFAULT_BRANCH).encode()
CACHE_BYTES = 32 * 1024 * 1024  # commits and trees are read twice per fetch: walk, then pack
CACHE_OBJECT_MAX = 1024 * 1024  # larger objects (big regular files) are not worth caching
READ_AHEAD = 32  # objects fetched ahead of the pack writer, bounding memory to this many
READ_THREADS = 8  # parallel blob-store reads: S3 latency, not bandwidth, bounds a clone


def parse_loose(data: bytes) -> tuple[int, bytes]:
    """(type number, body) of a zlib-compressed loose object (`<type> <size>\\0<body>`)."""
    raw = zlib.decompress(data)
    header, _, body = raw.partition(b"\0")
    type_name, _, size = header.partition(b" ")
    cls = object_class(type_name)
    if cls is None or not size.isdigit() or int(size) != len(body):
        raise ValueError(f"corrupt loose object header {header[:40]!r}")
    return cls.type_num, body


class BlobObjectStore(BaseObjectStore):
    """Git objects of the blob store, read by sha, with a small cache and read-ahead.

    The pack writer asks for objects one by one in a known order (`plan`); reading ahead of it
    on a few threads hides the blob store's per-object latency without holding more than
    `READ_AHEAD` objects in memory.
    """

    def __init__(self, blobs: BlobStore, ours: Callable[[str], bool] | None = None):
        super().__init__()
        self.blobs = blobs
        self.ours = ours
        self._cache: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
        self._cache_bytes = 0
        self._lock = Lock()
        self._plan: list[str] = []
        self._plan_index: dict[str, int] = {}
        self._ahead: dict[str, Future[tuple[int, bytes]]] = {}
        self._pool: ThreadPoolExecutor | None = None

    @staticmethod
    def _hex(sha: ObjectID | RawObjectID | bytes) -> str:
        return (sha_to_hex(RawObjectID(sha)) if len(sha) == 20 else sha).decode("ascii")

    def contains_loose(self, sha: ObjectID | RawObjectID) -> bool:
        hexsha = self._hex(sha)
        return hexsha in self._cache or self.blobs.size(git_object_key(hexsha)) is not None

    def __contains__(self, sha: ObjectID | RawObjectID) -> bool:
        return self.contains_loose(sha)

    @property
    def packs(self) -> list[Pack]:
        return []

    def find_common_revisions(self, graphwalker: Any) -> list[ObjectID]:
        """The client's `have`s this repo shares, ACKed as dulwich does, but only for commits
        of this repo's own history: the store is shared by every repo, and an ACK for another
        (private) repo's commit would tell the client that it exists."""
        haves: list[ObjectID] = []
        sha = next(graphwalker)
        while sha:
            if self.ours is not None and self.ours(sha.decode("ascii")) and sha in self:
                haves.append(sha)
                graphwalker.ack(sha)
            sha = next(graphwalker)
        return haves

    def __iter__(self) -> Iterator[ObjectID]:
        raise NotImplementedError("the blob store is shared by every repo; it is never listed")

    def get_raw(self, name: ObjectID | RawObjectID) -> tuple[int, bytes]:
        hexsha = self._hex(name)
        cached = self._cache.get(hexsha)
        if cached is not None:
            return cached
        future = self._read_ahead(hexsha)
        try:
            value = future.result() if future is not None else self._read(hexsha)
        except FileNotFoundError:
            raise KeyError(hexsha) from None
        self._remember(hexsha, value)
        return value

    def __getitem__(self, sha: ObjectID | RawObjectID) -> ShaFile:
        # Objects were verified against their sha when stored (app.repos.gitobjects, push),
        # and git verifies every object it receives: hashing each again here is wasted work.
        hexsha = self._hex(sha).encode("ascii")
        type_num, body = self.get_raw(sha)
        return ShaFile.from_raw_string(type_num, body, sha=ObjectID(hexsha))

    def _read(self, hexsha: str) -> tuple[int, bytes]:
        key = git_object_key(hexsha)
        try:
            path = self.blobs.local_path(key)
            return parse_loose(path.read_bytes() if path else read_all(self.blobs, key))
        except BlobNotFound:
            raise FileNotFoundError(hexsha) from None

    def _remember(self, hexsha: str, value: tuple[int, bytes]) -> None:
        if value[0] not in (1, 2) or len(value[1]) > CACHE_OBJECT_MAX:
            return  # only commits (1) and trees (2) are read twice
        with self._lock:
            if hexsha in self._cache:
                return
            self._cache[hexsha] = value
            self._cache_bytes += len(value[1])
            while self._cache_bytes > CACHE_BYTES:
                _, (_, old) = self._cache.popitem(last=False)
                self._cache_bytes -= len(old)

    def plan_reads(self, order: Iterable[str]) -> None:
        """The order the pack writer will ask for objects in, so reads can run ahead of it."""
        self._plan = list(order)
        if self._plan and self.blobs.local_path(git_object_key(self._plan[0])) is not None:
            self._plan = []  # a local disk answers faster than a thread hand-off
        self._plan_index = {sha: i for i, sha in enumerate(self._plan)}

    def _read_ahead(self, hexsha: str) -> Future[tuple[int, bytes]] | None:
        position = self._plan_index.get(hexsha)
        if position is None:
            return None
        if self._pool is None:
            self._pool = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="git-read")
        for passed in [s for s in self._ahead if self._plan_index[s] < position]:
            self._ahead.pop(passed).cancel()  # skipped by the writer: never held for long
        for sha in self._plan[position : position + READ_AHEAD]:
            if sha not in self._ahead and sha not in self._cache:
                self._ahead[sha] = self._pool.submit(self._read, sha)
        return self._ahead.pop(hexsha, None)

    def iter_unpacked_subset(
        self, shas: Iterable[ObjectID | RawObjectID], **_kwargs: Any
    ) -> Iterator[UnpackedObject]:
        # Asked only for deltas to reuse; loose objects have none, so answer without reading.
        return iter(())

    def add_object(self, obj: ShaFile) -> None:
        store_objects(self.blobs, [obj])

    def add_objects(
        self,
        objects: Iterable[tuple[ShaFile, str | None]],
        progress: Callable[..., None] | None = None,
    ) -> None:
        store_objects(self.blobs, (obj for obj, _path in objects))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._ahead.clear()


class AtriumGitRepo(BaseRepo):
    """One repo's refs (a snapshot) over the shared object store, as dulwich's server sees it."""

    def __init__(
        self,
        blobs: BlobStore,
        refs: Mapping[str, str],
        *,
        wants_blobs: bool = False,
        ours: Callable[[str], bool] | None = None,
    ):
        """ours: whether a commit sha belongs to this repo's history (for negotiation)."""
        snapshot: dict[Ref, bytes] = {Ref(n.encode()): s.encode() for n, s in refs.items()}
        if Ref(b"refs/heads/" + DEFAULT_BRANCH.encode()) in snapshot:
            snapshot[Ref(b"HEAD")] = HEAD_SYMREF
        self.store = BlobObjectStore(blobs, ours)
        self.wants_blobs = wants_blobs  # see app.git.service.AtriumUploadPack
        super().__init__(self.store, DictRefsContainer(snapshot))  # type: ignore[arg-type]

    def get_named_file(self, path: str, basedir: str | None = None) -> None:
        return None  # no `shallow`, `info/grafts`…: the server keeps no per-client state

    def get_shallow(self) -> set[ObjectID]:
        return set()

    def update_shallow(
        self, new_shallow: set[ObjectID] | None, new_unshallow: set[ObjectID] | None
    ) -> None:
        return None  # a shallow *client* is described by its request, never stored here

    def find_missing_objects(self, *args: Any, **kwargs: Any) -> MissingObjectFinder | None:
        finder = super().find_missing_objects(*args, **kwargs)
        return None if finder is None else _PlanningFinder(finder, self.store)  # type: ignore[return-value]


class _PlanningFinder:
    """Passes the finder's objects through, telling the store the order they will be read in."""

    def __init__(self, finder: MissingObjectFinder, store: BlobObjectStore):
        self.finder = finder
        self.store = store

    def __iter__(self) -> Iterator[tuple[ObjectID, Any]]:
        found = list(self.finder)
        self.store.plan_reads(sha.decode("ascii") for sha, _hint in found)
        return iter(found)

    def get_remote_has(self) -> set[ObjectID]:
        return self.finder.get_remote_has()
