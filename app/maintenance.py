"""`atrium gc`: delete blobs that no revision can reach, without racing live uploads.

What is garbage: git objects (`git/<sha1>`) and large objects (`lfs/<sha256>`) that no ref
and no recorded commit of any repo reaches — left by deleted repos, by uploads never committed
and by crashes between writing objects and moving a ref (ARCHITECTURE.md §5). Scratch
objects that nothing ever references — LFS parts and S3 staging copies of multipart uploads
that were abandoned, cached clone replies — are deleted once older than the grace period too.
Xet xorbs and shards are not swept: their chunks feed the dedup index of later uploads.

Reachability is read from the database index (`commits`, `tree_entries`), which is written in
the same transaction that moves a ref, so it is exactly what the API can serve; `atrium fsck`
checks that index against the objects. Every commit recorded for a repo is a root, not only
ref tips: a sha stays resolvable after its branch moves (`repo_commits`).

The sweep is safe against writers that run meanwhile:

1. *Grace period*: only objects older than `grace` are candidates, so an object uploaded for
   a commit that is still being prepared (LFS upload, then commit) is never a candidate.
2. *Forget, settle, re-mark*: the candidate LFS objects' rows are deleted first, so from then
   on no new commit may point at them (`lfs_size_for` refuses an oid the repo was not given)
   and a client that uploads the same content again writes a fresh object. After `settle`
   (longer than a commit takes from reading those rows to moving its ref) the reachable set is
   computed again and only candidates that are still unreachable are deleted; one that a
   commit reached meanwhile is kept and its rows are put back.
3. *One sweeper*: `exclusive` (a Postgres advisory lock; a lock file beside the SQLite
   database) lets one replica collect at a time; other background jobs may use it too.

Residual window (documented, not closed): a *git* object that is garbage and whose exact
content is committed again while the delete phase runs is skipped by the commit's writer
(`store_objects` does not rewrite an existing object) and may then be deleted. The commits
and the refs are checked again before every batch of deletions, which shrinks the window to
one batch; running gc in a quiet hour closes it.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import BlobNotFound, BlobStore
from app.blobs.base import read_all
from app.blobs.keys import GIT_PREFIX, LFS_PREFIX, git_object_key, lfs_key
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.errors import Conflict
from app.git.cache import CACHE_PREFIX
from app.git.models import GitTag
from app.lfs.service import PARTS_PREFIX, STAGING_PREFIX
from app.repos.models import Commit, LfsObject, Ref, RepoCommit, RepoLfsObject, TreeEntry

log = logging.getLogger("atrium.gc")

SWEPT_PREFIXES = (GIT_PREFIX, LFS_PREFIX)
# Never reachable: only their age decides (an upload in progress is younger than the grace).
SCRATCH_PREFIXES = (PARTS_PREFIX, STAGING_PREFIX, CACHE_PREFIX)
DEFAULT_GRACE_S = 24 * 3600  # an upload and its commit are far apart at most this long
DEFAULT_SETTLE_S = 60.0  # longer than any commit takes between planning and moving its ref
QUERY_BATCH = 500  # shas per IN (...) query: under SQLite's bound-parameter limit
DELETE_BATCH = 1000  # objects deleted between two checks that refs did not move


@dataclass
class GcReport:
    """What one run found and removed; `candidates` are listed even on a dry run."""

    reachable: int = 0
    scanned: int = 0
    young: int = 0
    candidates: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    deleted_bytes: int = 0
    resurrected: int = 0  # candidates that a commit reached again during the run

    def summary(self, dry_run: bool) -> str:
        verb = "would delete" if dry_run else "deleted"
        count = len(self.candidates) if dry_run else len(self.deleted)
        return (
            f"{self.reachable} reachable objects, {self.scanned} stored under "
            f"{', '.join(SWEPT_PREFIXES + SCRATCH_PREFIXES)}; "
            f"{self.young} younger than the grace period kept; "
            f"{verb} {count} unreachable objects ({self.deleted_bytes} bytes)"
        )


@dataclass
class _Marks:
    """Reachable keys and the ref state they were computed from."""

    keys: set[str]
    refs: frozenset[tuple[int, str, str]]


def _batches(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), QUERY_BATCH):
        yield items[start : start + QUERY_BATCH]


def _ref_state(session: Session) -> frozenset[tuple[int, str, str]]:
    return frozenset(session.execute(select(Ref.repo_id, Ref.name, Ref.commit_sha)).tuples())


def _roots(session: Session) -> set[str]:
    """Every ref target, every commit recorded for an existing repo, and every annotated tag
    object pushed over git (its ref row holds the commit; the tag object is kept too)."""
    roots = set(session.scalars(select(Ref.commit_sha)))
    roots.update(session.scalars(select(RepoCommit.commit_sha)))
    roots.update(session.scalars(select(GitTag.tag_sha)))
    return roots


class _Marker:
    """Breadth-first walk over the index, a batch of shas per query, from given roots."""

    def __init__(self, session: Session, blobs: BlobStore, keys: set[str] | None = None):
        self.session = session
        self.blobs = blobs
        self.keys: set[str] = keys if keys is not None else set()

    def mark(self, roots: Iterable[str]) -> set[str]:
        commits = [sha for sha in set(roots) if git_object_key(sha) not in self.keys]
        while commits:
            commits = self._commits(commits)
        return self.keys

    def _commits(self, shas: Sequence[str]) -> list[str]:
        """Mark commits and their trees; returns the parents not marked yet."""
        parents: set[str] = set()
        trees: list[str] = []
        found: set[str] = set()
        for batch in _batches(shas):
            for row in self.session.execute(
                select(Commit.sha, Commit.tree_sha, Commit.parents).where(Commit.sha.in_(batch))
            ):
                found.add(row.sha)
                self.keys.add(git_object_key(row.sha))
                trees.append(row.tree_sha)
                parents.update(row.parents)
        for sha in set(shas) - found:
            parents.update(self._tag_target(sha))
        self._trees(trees)
        return [sha for sha in parents if git_object_key(sha) not in self.keys]

    def _tag_target(self, sha: str) -> list[str]:
        """A root that is not an indexed commit: an annotated tag object (kept, followed)."""
        try:
            raw = zlib.decompress(read_all(self.blobs, git_object_key(sha)))
        except (BlobNotFound, zlib.error):
            return []  # missing or unreadable: fsck reports it; nothing to keep here
        header, _, body = raw.partition(b"\0")
        if not header.startswith(b"tag "):
            return []
        self.keys.add(git_object_key(sha))
        first = body.split(b"\n", 1)[0]
        return [first.removeprefix(b"object ").decode()] if first.startswith(b"object ") else []

    def _trees(self, shas: Sequence[str]) -> None:
        pending = [sha for sha in set(shas) if git_object_key(sha) not in self.keys]
        while pending:
            subtrees: set[str] = set()
            for batch in _batches(pending):
                self.keys.update(git_object_key(sha) for sha in batch)
                query = select(TreeEntry.kind, TreeEntry.oid, TreeEntry.lfs_oid).where(
                    TreeEntry.tree_sha.in_(batch)
                )
                for kind, oid, lfs_oid in self.session.execute(query):
                    if kind == "tree":
                        subtrees.add(oid)
                    else:
                        self.keys.add(git_object_key(oid))
                    if lfs_oid:
                        self.keys.add(lfs_key(lfs_oid))
            pending = [sha for sha in subtrees if git_object_key(sha) not in self.keys]


def reachable(factory: sessionmaker[Session], blobs: BlobStore) -> _Marks:
    """Keys of every object that a ref or a recorded commit reaches."""
    with factory() as session:
        refs = _ref_state(session)
        keys = _Marker(session, blobs).mark(_roots(session))
    return _Marks(keys, refs)


def _refresh(factory: sessionmaker[Session], blobs: BlobStore, marks: _Marks) -> int:
    """Extend marks with what commits made since they were computed reach; new keys count."""
    with factory() as session:
        refs = _ref_state(session)
        if refs == marks.refs:
            return 0
        before = len(marks.keys)
        _Marker(session, blobs, marks.keys).mark(_roots(session))
    marks.refs = refs
    return len(marks.keys) - before


def _candidates(
    blobs: BlobStore, marks: _Marks, grace_s: float, report: GcReport
) -> dict[str, float]:
    """Stored keys under the swept prefixes that are unreachable and older than grace."""
    cutoff = time.time() - grace_s
    found: dict[str, float] = {}
    for prefix in SWEPT_PREFIXES + SCRATCH_PREFIXES:
        # Listed without the slash (a key may not end with one), so `gitx/…` is filtered out.
        for key, mtime in blobs.keys(prefix.rstrip("/")):
            if not key.startswith(prefix):
                continue
            report.scanned += 1
            if key in marks.keys:
                continue
            if mtime > cutoff:
                report.young += 1
                continue
            found[key] = mtime
    return found


@dataclass
class _Forgotten:
    """LFS rows deleted by a run, to put back for any object a commit reached meanwhile."""

    objects: list[dict[str, object]] = field(default_factory=list)
    links: list[dict[str, object]] = field(default_factory=list)
    kept: set[str] = field(default_factory=set)  # keys kept with their rows (held by Xet)

    def restore(self, factory: sessionmaker[Session], keys: set[str]) -> None:
        oids = {key.removeprefix(LFS_PREFIX) for key in keys if key.startswith(LFS_PREFIX)}
        if not oids:
            return
        with write_transaction(factory) as session:
            objects = [row for row in self.objects if row["oid"] in oids]
            insert_ignore(session, LfsObject, objects, ["oid"])
            links = [row for row in self.links if row["oid"] in oids]
            insert_ignore(session, RepoLfsObject, links, ["repo_id", "oid"])


def _forget_lfs(factory: sessionmaker[Session], keys: Iterable[str]) -> _Forgotten:
    """Delete the rows of candidate LFS objects so no new commit can point at them.

    Objects that Xet also holds keep their rows (the content stays readable through Xet) and
    their `lfs/` copy too, so that nothing refers to an object that is gone.
    """
    oids = [key.removeprefix(LFS_PREFIX) for key in keys if key.startswith(LFS_PREFIX)]
    forgotten = _Forgotten()
    with write_transaction(factory) as session:
        for batch in _batches(oids):
            rows = session.execute(
                select(LfsObject.oid, LfsObject.size, LfsObject.xet_hash).where(
                    LfsObject.oid.in_(batch)
                )
            ).all()
            xet_backed = {row.oid for row in rows if row.xet_hash is not None}
            forgotten.kept.update(lfs_key(oid) for oid in xet_backed)
            plain = [oid for oid in batch if oid not in xet_backed]
            forgotten.objects += [
                {"oid": row.oid, "size": row.size} for row in rows if row.oid in plain
            ]
            links = select(
                RepoLfsObject.repo_id, RepoLfsObject.oid, RepoLfsObject.created_at
            ).where(RepoLfsObject.oid.in_(plain))
            forgotten.links += [dict(row._mapping) for row in session.execute(links)]
            session.execute(delete(RepoLfsObject).where(RepoLfsObject.oid.in_(plain)))
            session.execute(delete(LfsObject).where(LfsObject.oid.in_(plain)))
    return forgotten


@contextmanager
def exclusive(engine: Engine, data_dir: Path, job: str) -> Iterator[None]:
    """Run `job` on one replica at a time across the hub, or raise Conflict at once.

    On PostgreSQL a session advisory lock keyed by the job's name (held by one connection for
    the whole run, released if the process dies); with SQLite, whose processes share one
    machine, an exclusive `flock` on a file of the data folder.
    """
    busy = Conflict(f"another `{job}` is running against this database; try again later")
    if engine.dialect.name == "postgresql":
        key = int.from_bytes(
            hashlib.blake2b(job.encode(), digest_size=8).digest(), "big", signed=True
        )
        with engine.connect() as conn:
            if not conn.scalar(select(func.pg_try_advisory_lock(key))):
                raise busy
            try:
                yield
            finally:
                conn.execute(select(func.pg_advisory_unlock(key)))
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / f"{job.replace(' ', '-')}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise busy from None
        yield


def sweeper_lock(engine: Engine, data_dir: Path) -> AbstractContextManager[None]:
    """The one-sweeper lock of `atrium gc`, held for the whole run."""
    return exclusive(engine, data_dir, "atrium gc")


def collect_garbage(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    *,
    grace_s: float = DEFAULT_GRACE_S,
    settle_s: float = DEFAULT_SETTLE_S,
    dry_run: bool = False,
) -> GcReport:
    """One mark-and-sweep run (see the module docstring); the caller holds `sweeper_lock`."""
    report = GcReport()
    marks = reachable(factory, blobs)
    report.reachable = len(marks.keys)
    candidates = _candidates(blobs, marks, grace_s, report)
    report.candidates = sorted(candidates)
    if dry_run or not candidates:
        report.deleted_bytes = sum(blobs.size(k) or 0 for k in report.candidates) if dry_run else 0
        return report
    forgotten = _forget_lfs(factory, candidates)
    time.sleep(settle_s)
    doomed = [key for key in report.candidates if key not in forgotten.kept]
    resurrected: set[str] = set()
    for start in range(0, len(doomed), DELETE_BATCH):
        _refresh(factory, blobs, marks)
        for key in doomed[start : start + DELETE_BATCH]:
            if key in marks.keys:
                resurrected.add(key)
                continue
            report.deleted_bytes += blobs.size(key) or 0
            blobs.delete(key)
            report.deleted.append(key)
    forgotten.restore(factory, resurrected)
    report.resurrected = len(resurrected)
    log.info("gc: %s", report.summary(dry_run=False))
    return report


def copy_objects(source: BlobStore, target: BlobStore) -> tuple[int, int]:
    """Copy every object that target lacks (a bucket sync, for backups and migrations).

    Objects are write-once, so a key already in target holds the same bytes and is skipped;
    each copy is streamed and its size verified. Returns (copied, skipped).
    """
    copied = skipped = 0
    for key, _mtime in source.keys(""):
        if target.size(key) is not None:
            skipped += 1
            continue
        size = source.size(key)
        if size is None:
            continue  # deleted since it was listed (gc): nothing refers to it any more
        target.put(key, source.open(key), size=size)
        copied += 1
    return copied, skipped
