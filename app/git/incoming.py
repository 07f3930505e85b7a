"""Unpacking a pushed pack: verified by dulwich, written object by object to the blob store.

The pack is copied to a temporary file while its trailing checksum is verified, then inflated
one object at a time (deltas resolved by dulwich). Blobs are written and forgotten, keeping
only their size and LFS pointer; commits, trees and tags stay parsed in memory for the checks
of `app.git.push` (they are small next to file content). Objects written by a push that is then
refused are unreferenced, and left for `atrium gc` (ARCHITECTURE.md §5).
"""

from __future__ import annotations

import tempfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Blob, Commit, ObjectID, RawObjectID, ShaFile, Tag, Tree, sha_to_hex
from dulwich.pack import PackData, PackInflater, PackStreamCopier

from app.blobs import BlobStore
from app.blobs.keys import git_object_key
from app.repos.gitobjects import LfsPointer, parse_lfs_pointer

ReadFn = Callable[[int], bytes]
WRITE_THREADS = 8  # parallel object writes: each is a durable put (fsync or an S3 request)
WRITES_IN_FLIGHT = 64  # objects waiting to be written: bounds the memory they hold


@dataclass(frozen=True)
class IncomingBlob:
    size: int
    pointer: LfsPointer | None


@dataclass
class Incoming:
    """The objects a push brought, by hex sha, and the stored objects its deltas were based on
    (those must be readable by the pusher, like any object the push refers to)."""

    commits: dict[str, Commit] = field(default_factory=dict)
    trees: dict[str, Tree] = field(default_factory=dict)
    tags: dict[str, Tag] = field(default_factory=dict)
    blobs: dict[str, IncomingBlob] = field(default_factory=dict)
    delta_bases: set[str] = field(default_factory=set)

    def __contains__(self, sha: str) -> bool:
        return sha in self.blobs or sha in self.trees or sha in self.commits or sha in self.tags

    def add(self, obj: ShaFile) -> None:
        sha = obj.id.decode("ascii")
        obj.check()  # malformed commits, trees (bad modes, names) and tags raise here
        if isinstance(obj, Blob):
            data = obj.as_raw_string()
            self.blobs[sha] = IncomingBlob(len(data), parse_lfs_pointer(data))
        elif isinstance(obj, Tree):
            self.trees[sha] = obj
        elif isinstance(obj, Commit):
            self.commits[sha] = obj
        elif isinstance(obj, Tag):
            self.tags[sha] = obj


class MissingDeltaBase(Exception):
    """A thin pack's delta names a base that exists nowhere in the store."""

    def __init__(self, sha: str):
        super().__init__(sha)
        self.sha = sha


def receive_pack(
    blobs: BlobStore,
    read_all: ReadFn,
    read_some: ReadFn | None,
    base: Callable[[ObjectID], tuple[int, bytes]],
) -> Incoming:
    """Read a (thin) pack from the wire, verify it, store its objects and describe them.

    `base` reads an object that a thin pack's delta refers to but does not carry; when it
    has none, MissingDeltaBase (the objects stored so far are garbage for `atrium gc`).
    """
    incoming = Incoming()

    def resolve_base(sha: RawObjectID | ObjectID) -> tuple[int, bytes]:
        hexsha = sha_to_hex(RawObjectID(sha)) if len(sha) == 20 else ObjectID(sha)
        incoming.delta_bases.add(hexsha.decode("ascii"))
        try:
            return base(hexsha)
        except KeyError:
            raise MissingDeltaBase(hexsha.decode("ascii")) from None

    with tempfile.TemporaryFile(prefix="atrium-push-") as spool:
        PackStreamCopier(DEFAULT_OBJECT_FORMAT.hash_func, read_all, read_some, spool).verify()
        size = spool.tell()
        spool.seek(0)
        data = PackData.from_file(spool, DEFAULT_OBJECT_FORMAT, size)
        try:
            with _ParallelWriter(blobs) as writer:
                for obj in PackInflater.for_pack_data(data, resolve_ext_ref=resolve_base):
                    incoming.add(obj)
                    writer.put(obj)
        finally:
            data.close()
    return incoming


class _ParallelWriter:
    """Stores objects on a few threads, holding at most WRITES_IN_FLIGHT of them; leaving the
    block waits for every write and raises the first failure."""

    def __init__(self, blobs: BlobStore):
        self.blobs = blobs
        self.pool = ThreadPoolExecutor(WRITE_THREADS, thread_name_prefix="git-write")
        self.pending: deque[Future[None]] = deque()

    def put(self, obj: ShaFile) -> None:
        if len(self.pending) >= WRITES_IN_FLIGHT:
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self._write, obj))

    def _write(self, obj: ShaFile) -> None:
        # No existence check first (as store_objects does): git sends only objects the
        # server's refs do not reach, so nearly all are new, and rewriting one is harmless.
        self.blobs.put(git_object_key(obj.id.decode("ascii")), obj.as_legacy_object_chunks())

    def __enter__(self) -> _ParallelWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            self.pool.shutdown(cancel_futures=True)
