"""`atrium fsck`: verify that every revision the API can reach is complete and intact.

Roots are every ref and every commit recorded for a repo (a sha resolves only within its repo,
see `RepoCommit`). From them the walk loads each git object from the blob store, re-hashes it
(dulwich computes the id from the stored bytes, so a corrupt object shows as a mismatch),
checks that the database index (`commits`, `tree_entries`) says what the objects say, and
re-hashes every large object (`lfs/<sha256>`, or rebuilt from its xorbs when it came only
through Xet) against its oid and size. Objects are immutable
and addressed by hash, so each is verified once per run however many repos share it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from dulwich.errors import ObjectFormatException
from dulwich.objects import Commit as GitCommit
from dulwich.objects import ShaFile, Tree
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import BlobNotFound, BlobStore
from app.repos import content
from app.repos.gitobjects import (
    LFS_POINTER_MAX,
    MODE_GITLINK,
    MODE_TREE,
    load_object,
    open_object,
    parse_lfs_pointer,
)
from app.repos.models import Commit, Ref, Repo, RepoCommit, TreeEntry


@dataclass
class FsckReport:
    """What one run looked at and every problem found (empty when the store is sound)."""

    repos: int = 0
    commits: int = 0
    objects: int = 0
    lfs_objects: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        verdict = "ok" if self.ok else f"{len(self.problems)} problem(s)"
        return (
            f"checked {self.repos} repos, {self.commits} commits, {self.objects} git objects, "
            f"{self.lfs_objects} LFS objects: {verdict}"
        )


class _Checker:
    """One walk; `seen` holds the ids already verified (or reported) in this run."""

    def __init__(self, session: Session, blobs: BlobStore, report: FsckReport, seen: set[str]):
        self.session = session
        self.blobs = blobs
        self.report = report
        self.seen = seen

    def problem(self, text: str) -> None:
        self.report.problems.append(text)

    def load(self, sha: str, kind: type[ShaFile], where: str) -> ShaFile | None:
        """The object, re-hashed; None (and a problem) when missing, corrupt or mistyped."""
        self.report.objects += 1
        try:
            obj = load_object(self.blobs, sha)
        except BlobNotFound:
            self.problem(f"missing git object {sha} ({where})")
            return None
        except (ObjectFormatException, ValueError, OSError) as exc:
            self.problem(f"unreadable git object {sha} ({where}): {exc}")
            return None
        if obj.id.decode() != sha:
            self.problem(f"corrupt git object {sha} ({where}): content hashes to {obj.id.decode()}")
            return None
        if not isinstance(obj, kind):
            self.problem(f"git object {sha} ({where}) is a {obj.type_name.decode()}")
            return None
        return obj

    def commit(self, sha: str, where: str) -> None:
        """Walk history from sha; iterative, since histories outgrow Python's stack."""
        pending = [sha]
        while pending:
            current = pending.pop()
            if current in self.seen:
                continue
            self.seen.add(current)
            self.report.commits += 1
            obj = self.load(current, GitCommit, where)
            if not isinstance(obj, GitCommit):
                continue
            row = self.session.get(Commit, current)
            tree_sha = obj.tree.decode()
            if row is None:
                self.problem(f"commit {current} ({where}) is not in the commit index")
            elif row.tree_sha != tree_sha or row.parents != [p.decode() for p in obj.parents]:
                self.problem(f"commit {current} ({where}): index disagrees with the object")
            self.tree(tree_sha, f"tree of commit {current[:12]} in {where}")
            pending.extend(p.decode() for p in obj.parents)

    def tree(self, sha: str, where: str) -> None:
        if sha in self.seen:
            return
        self.seen.add(sha)
        obj = self.load(sha, Tree, where)
        if not isinstance(obj, Tree):
            return
        rows = {
            row.name: row
            for row in self.session.scalars(select(TreeEntry).where(TreeEntry.tree_sha == sha))
        }
        for item in obj.iteritems():
            name = item.path.decode("utf-8", "surrogateescape")
            oid = item.sha.decode()
            row = rows.pop(name, None)
            if row is None or row.oid != oid or row.mode != item.mode:
                self.problem(f"tree {sha} ({where}): index entry {name!r} disagrees")
            if item.mode == MODE_GITLINK:
                continue
            if item.mode & 0o170000 == MODE_TREE:
                self.tree(oid, f"{where}/{name}")
            elif row is not None:
                self.file(oid, row, f"{where}/{name}")
        for name in rows:
            self.problem(f"tree {sha} ({where}): index lists {name!r}, the tree does not")

    def blob(self, sha: str, where: str) -> tuple[int, bytes] | None:
        """A blob's size and its first bytes (enough for an LFS pointer), re-hashed as it
        streams: a large regular file is never held whole. None (and a problem) when it is
        missing, corrupt or not a blob."""
        self.report.objects += 1
        try:
            stored = open_object(self.blobs, sha)
            digest = hashlib.sha1(f"{stored.type_name} {stored.size}\0".encode())
            head, count = b"", 0
            for chunk in stored.chunks:
                digest.update(chunk)
                if len(head) <= LFS_POINTER_MAX:
                    head += chunk[: LFS_POINTER_MAX + 1 - len(head)]
                count += len(chunk)
        except BlobNotFound:
            self.problem(f"missing git object {sha} ({where})")
            return None
        except (ValueError, OSError) as exc:
            self.problem(f"unreadable git object {sha} ({where}): {exc}")
            return None
        if count != stored.size or digest.hexdigest() != sha:
            self.problem(
                f"corrupt git object {sha} ({where}): content hashes to {digest.hexdigest()}"
            )
            return None
        if stored.type_name != "blob":
            self.problem(f"git object {sha} ({where}) is a {stored.type_name}")
            return None
        return count, head

    def file(self, oid: str, row: TreeEntry, where: str) -> None:
        if oid in self.seen:
            return
        self.seen.add(oid)
        blob = self.blob(oid, where)
        if blob is None:
            return
        size, head = blob
        if row.lfs_oid is None:
            if size != row.size:
                self.problem(f"file {where}: index size {row.size}, blob has {size}")
            return
        pointer = parse_lfs_pointer(head)
        if pointer is None or pointer.oid != row.lfs_oid or pointer.size != row.size:
            self.problem(f"file {where}: LFS pointer disagrees with the index")
            return
        self.lfs(pointer.oid, pointer.size, where)

    def lfs(self, oid: str, size: int, where: str) -> None:
        if f"lfs:{oid}" in self.seen:
            return
        self.seen.add(f"lfs:{oid}")
        self.report.lfs_objects += 1
        digest, count = hashlib.sha256(), 0
        located = content.locate_lfs(self.blobs, oid, size, content.xet_hash_of(self.session, oid))
        try:
            for chunk in content.open_content(self.blobs, located):
                digest.update(chunk)
                count += len(chunk)
        except content.ContentMissing:
            self.problem(f"missing LFS object {oid} ({where})")
            return
        if count != size or digest.hexdigest() != oid:
            self.problem(
                f"corrupt LFS object {oid} ({where}): {count} bytes hashing to {digest.hexdigest()}"
            )


def _roots(session: Session) -> Iterator[tuple[str, str]]:
    """(commit sha, description) for every ref and every commit recorded for a repo."""
    repos = {repo.id: repo.repo_id for repo in session.scalars(select(Repo))}
    for ref in session.scalars(select(Ref).order_by(Ref.repo_id, Ref.name)):
        yield ref.commit_sha, f"{repos.get(ref.repo_id, '?')} {ref.name}"
    for link in session.scalars(select(RepoCommit)):
        yield link.commit_sha, f"{repos.get(link.repo_id, '?')} commit"


def fsck(
    factory: sessionmaker[Session], blobs: BlobStore, *, verified: set[str] | None = None
) -> FsckReport:
    """Verify everything reachable; read-only, safe while the server runs.

    `verified` carries the ids checked by an earlier run in this process (it is updated): an
    object never changes under its hash, so a repeated check only looks at what is new."""
    report = FsckReport()
    with factory() as session:
        report.repos = len(session.scalars(select(Repo.id)).all())
        checker = _Checker(session, blobs, report, set() if verified is None else verified)
        for sha, where in _roots(session):
            checker.commit(sha, where)
    return report
