"""Storage usage of a namespace, and the check every upload path makes before storing bytes.

A namespace's usage is the size of the distinct content its repos hold:

- large files (LFS, and Xet files, which are LFS objects too): every object linked to one of
  its repos in `repo_lfs_objects`, each counted once however many repos or commits use it. A
  link is made when the upload is verified, so an object uploaded but never committed counts
  until `atrium gc` forgets it;
- regular git files: every distinct blob recorded in `repo_git_blobs` for one of its repos.

Trees, commits and LFS pointer files (a few hundred bytes each) are not counted, nor are
xorbs before their file is registered. Each upload adds only what is new to the namespace,
so content it holds already never counts twice.

The check runs before the upload's bytes are stored; it is not serialized with other uploads,
so concurrent uploads may overshoot the limit by what they send at the same time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db.base import utcnow
from app.db.upsert import insert_ignore
from app.errors import QuotaExceeded
from app.quotas.models import NamespaceQuota, RepoGitBlob
from app.repos.history import chunks
from app.repos.models import LfsObject, Repo, RepoLfsObject, TreeEntry

SIZE_UNITS = ("bytes", "kB", "MB", "GB", "TB", "PB")


@dataclass(frozen=True)
class Usage:
    namespace: str
    lfs_bytes: int
    git_bytes: int
    limit: int  # 0: unlimited

    @property
    def used(self) -> int:
        return self.lfs_bytes + self.git_bytes

    def as_json(self) -> dict[str, object]:
        return {
            "namespace": self.namespace,
            "used": self.used,
            "usedLfs": self.lfs_bytes,
            "usedGit": self.git_bytes,
            "limit": self.limit or None,
        }


def format_size(size: int) -> str:
    """`9.8 GB`: decimal units, as the Hub shows sizes."""
    value = float(size)
    for unit in SIZE_UNITS:
        if value < 999.5 or unit == SIZE_UNITS[-1]:  # .3g would print 1e+03
            if unit == "bytes":
                return "1 byte" if size == 1 else f"{size} bytes"
            return f"{value:.3g} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def namespace_limit(session: Session, settings: Settings, namespace: str) -> int:
    """The namespace's own limit if an admin set one, else the default; 0 is unlimited."""
    own = session.get(NamespaceQuota, namespace)
    return own.limit_bytes if own is not None else settings.namespace_quota


def set_limit(session: Session, namespace: str, limit: int | None) -> None:
    """Give the namespace its own limit (0: unlimited), or None: back to the default."""
    row = session.get(NamespaceQuota, namespace)
    if limit is None:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(NamespaceQuota(namespace=namespace, limit_bytes=limit))
    else:
        row.limit_bytes, row.updated_at = limit, utcnow()


def _repos(namespace: str) -> Select[int]:
    return select(Repo.id).where(Repo.namespace == namespace)


def _held_lfs(namespace: str) -> Select[str]:
    return select(RepoLfsObject.oid).where(RepoLfsObject.repo_id.in_(_repos(namespace)))


def usage(session: Session, settings: Settings, namespace: str) -> Usage:
    lfs = session.scalar(
        select(func.coalesce(func.sum(LfsObject.size), 0)).where(
            LfsObject.oid.in_(_held_lfs(namespace))
        )
    )
    distinct_blobs = (
        select(RepoGitBlob.oid, RepoGitBlob.size)
        .where(RepoGitBlob.repo_id.in_(_repos(namespace)))
        .distinct()
        .subquery()
    )
    git = session.scalar(select(func.coalesce(func.sum(distinct_blobs.c.size), 0)))
    limit = namespace_limit(session, settings, namespace)
    return Usage(namespace, int(lfs or 0), int(git or 0), limit)


def _new_bytes(
    session: Session,
    namespace: str,
    table: type[RepoLfsObject | RepoGitBlob],
    sizes: Mapping[str, int],
) -> int:
    """The total size of the oids that no repo of the namespace holds in table."""
    held: set[str] = set()
    for batch in chunks(sizes):
        held.update(
            session.scalars(
                select(table.oid).where(table.repo_id.in_(_repos(namespace)), table.oid.in_(batch))
            )
        )
    return sum(size for oid, size in sizes.items() if oid not in held)


def _unmatched_sizes(session: Session, namespace: str, sizes: Sequence[int]) -> int:
    """The total of the sizes that no large object of the namespace has: those files cannot
    be content it holds, whatever their hash."""
    held = set(
        session.scalars(
            select(LfsObject.size)
            .where(LfsObject.oid.in_(_held_lfs(namespace)), LfsObject.size.in_(set(sizes)))
            .distinct()
        )
    )
    return sum(size for size in sizes if size not in held)


@dataclass(frozen=True)
class Upload:
    """What an upload would add, in bytes: large objects by sha256, git blobs by sha1, bytes
    not yet attributable to any content (a Xet xorb), and the sizes of large files not hashed
    yet (preupload), of which only those no held object matches count, so that this early
    check never refuses what the exact one at upload time would let through."""

    lfs: Mapping[str, int] | None = None
    git: Mapping[str, int] | None = None
    raw_bytes: int = 0
    unhashed: Sequence[int] = ()


def check_upload(session: Session, settings: Settings, namespace: str, upload: Upload) -> None:
    """QuotaExceeded (413) when the upload's content new to the namespace would take its
    usage past its limit; nothing is counted twice."""
    limit = namespace_limit(session, settings, namespace)
    if not limit:
        return
    needed = upload.raw_bytes
    if upload.lfs:
        needed += _new_bytes(session, namespace, RepoLfsObject, upload.lfs)
    if upload.git:
        needed += _new_bytes(session, namespace, RepoGitBlob, upload.git)
    if upload.unhashed:
        needed += _unmatched_sizes(session, namespace, upload.unhashed)
    if not needed:
        return
    used = usage(session, settings, namespace).used
    if used + needed > limit:
        raise QuotaExceeded(
            f"Storage quota of namespace {namespace!r} exceeded: {format_size(used)} used of "
            f"{format_size(limit)}, this upload needs {format_size(needed)}"
        )


@dataclass(frozen=True)
class RepoQuota:
    """The quota check of uploads to one repo, for paths that know only its id (a Xet token,
    a push)."""

    settings: Settings
    repo_id: int

    def check(self, session: Session, upload: Upload) -> None:
        repo = session.get(Repo, self.repo_id)
        if repo is not None:
            check_upload(session, self.settings, repo.namespace, upload)


def regular_files(rows: Iterable[TreeEntry]) -> dict[str, int]:
    """git blob sha1 -> size of the regular (non-LFS) files among tree rows."""
    return {row.oid: row.size for row in rows if row.kind == "blob" and row.lfs_oid is None}


def record_git_blobs(session: Session, repo_id: int, rows: Iterable[TreeEntry]) -> None:
    """Record the regular files of new tree rows as held by the repo (idempotent)."""
    blobs = regular_files(rows)
    insert_ignore(
        session,
        RepoGitBlob,
        [{"repo_id": repo_id, "oid": oid, "size": size} for oid, size in blobs.items()],
        ["repo_id", "oid"],
    )


def repo_storage(session: Session, namespace: str) -> list[tuple[Repo, int]]:
    """Each repo of the namespace with the bytes it holds (its large objects and git blobs,
    each counted once per repo), newest change first."""
    lfs: dict[int, int] = dict(
        session.execute(
            select(RepoLfsObject.repo_id, func.sum(LfsObject.size))
            .join(LfsObject, LfsObject.oid == RepoLfsObject.oid)
            .where(RepoLfsObject.repo_id.in_(_repos(namespace)))
            .group_by(RepoLfsObject.repo_id)
        )
        .tuples()
        .all()
    )
    blobs = (
        select(RepoGitBlob.repo_id, RepoGitBlob.oid, RepoGitBlob.size)
        .where(RepoGitBlob.repo_id.in_(_repos(namespace)))
        .distinct()
        .subquery()
    )
    git: dict[int, int] = dict(
        session.execute(select(blobs.c.repo_id, func.sum(blobs.c.size)).group_by(blobs.c.repo_id))
        .tuples()
        .all()
    )
    repos = session.scalars(
        select(Repo).where(Repo.namespace == namespace).order_by(Repo.updated_at.desc())
    )
    return [(repo, int(lfs.get(repo.id) or 0) + int(git.get(repo.id) or 0)) for repo in repos]
