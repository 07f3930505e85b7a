"""Repos, revisions and the file index: lookups and listings that never touch object storage."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.permissions import Principal, can_read, require_upload, require_write
from app.errors import EntryNotFound, RepoMoved, RepoNotFound, RevisionNotFound
from app.gating.service import require_access
from app.repos.models import (
    Commit,
    LfsObject,
    Ref,
    Repo,
    RepoCommit,
    RepoLfsObject,
    RepoRedirect,
    TreeEntry,
)
from app.repos.paths import validate_repo_type

HEADS = "refs/heads/"
TAGS = "refs/tags/"
DEFAULT_BRANCH = "main"
SHA_RE = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass(frozen=True)
class FileEntry:
    """A file or folder of one revision, with its path from the repo root."""

    path: str
    kind: str  # blob | tree
    mode: int
    oid: str
    size: int
    lfs_oid: str | None = None
    lfs_pointer_size: int | None = None
    xet_hash: str | None = None

    @property
    def is_dir(self) -> bool:
        return self.kind == "tree"

    @classmethod
    def of(cls, row: TreeEntry, path: str) -> FileEntry:
        return cls(
            path=path,
            kind=row.kind,
            mode=row.mode,
            oid=row.oid,
            size=row.size,
            lfs_oid=row.lfs_oid,
            lfs_pointer_size=row.lfs_pointer_size,
            xet_hash=row.xet_hash,
        )


def find_repo(session: Session, repo_type: str, repo_id: str) -> Repo | None:
    """The repo of that id; as on the Hub, `alice/model` also finds `Alice/Model` (ids are
    unique regardless of case, and the stored spelling is the one answered)."""
    namespace, _, name = repo_id.partition("/")
    kind = validate_repo_type(repo_type)
    exact = session.scalar(
        select(Repo).where(Repo.type == kind, Repo.namespace == namespace, Repo.name == name)
    )
    if exact is not None or not name:
        return exact
    return session.scalar(
        select(Repo)
        .where(
            Repo.type == kind,
            func.lower(Repo.namespace) == namespace.lower(),
            func.lower(Repo.name) == name.lower(),
        )
        .limit(1)
    )


def get_repo(
    session: Session,
    principal: Principal,
    repo_type: str,
    repo_id: str,
    *,
    write: bool = False,
    content: bool = False,
    upload: bool = False,
) -> Repo:
    """The repo if the caller may see it (and write it), else RepoNotFound: never 403 for a
    hidden repo, so its existence does not leak (ARCHITECTURE.md §6). With content, the
    caller is about to read file content: a gated repo needs granted access (app.gating).
    With upload, the caller sends objects: its writers, or those who may open pull requests
    on it (their commits are checked when they move a ref)."""
    repo = find_repo(session, repo_type, repo_id)
    if repo is None:
        moved_from(session, principal, repo_type, repo_id)
    key = (repo.type, repo.repo_id) if repo is not None else None
    if repo is None or not can_read(session, principal, repo.namespace, repo.private, key):
        # The Hub's words: huggingface_hub shows the URL (with the id) beside them.
        raise RepoNotFound("Repository not found")
    if write:
        require_write(session, principal, repo.namespace, key)
    elif upload:
        require_upload(session, principal, repo.namespace, repo.private, key)
    if content and repo.gated:
        require_access(session, principal, repo)
    return repo


def moved_from(session: Session, principal: Principal, repo_type: str, repo_id: str) -> None:
    """For an id no repo holds: RepoMoved when it is the old name of a repo the caller may
    read (a private repo's new name is told to no one else); nothing otherwise."""
    namespace, _, name = repo_id.partition("/")
    redirect = session.scalar(
        select(RepoRedirect).where(
            RepoRedirect.type == validate_repo_type(repo_type),
            RepoRedirect.namespace == namespace,
            RepoRedirect.name == name,
        )
    )
    target = session.get(Repo, redirect.repo_id) if redirect is not None else None
    if target is None:
        return
    key = (target.type, target.repo_id)
    if can_read(session, principal, target.namespace, target.private, key):
        raise RepoMoved(repo_id, target.repo_id)


def list_refs(session: Session, repo: Repo) -> list[Ref]:
    return list(session.scalars(select(Ref).where(Ref.repo_id == repo.id).order_by(Ref.name)))


def get_ref(session: Session, repo: Repo, ref_name: str) -> Ref | None:
    return session.scalar(select(Ref).where(Ref.repo_id == repo.id, Ref.name == ref_name))


def branch_ref_name(revision: str) -> str:
    return revision if revision.startswith("refs/") else HEADS + revision


def resolve_revision(session: Session, repo: Repo, revision: str | None) -> str:
    """The commit sha of a branch, tag, full ref or (short) sha of this repo."""
    revision = revision or DEFAULT_BRANCH
    names = [revision] if revision.startswith("refs/") else [HEADS + revision, TAGS + revision]
    refs = {
        ref.name: ref.commit_sha
        for ref in session.scalars(select(Ref).where(Ref.repo_id == repo.id, Ref.name.in_(names)))
    }
    for name in names:
        if name in refs:
            return refs[name]
    if SHA_RE.match(revision):
        matches = list(
            session.scalars(
                select(RepoCommit.commit_sha)
                .where(RepoCommit.repo_id == repo.id, RepoCommit.commit_sha.startswith(revision))
                .limit(2)
            )
        )
        if len(matches) == 1:
            return matches[0]
    raise RevisionNotFound(f"Invalid rev id: {revision}")


def get_commit(session: Session, sha: str) -> Commit:
    commit = session.get(Commit, sha)
    if commit is None:
        raise RevisionNotFound(f"Invalid rev id: {sha}")
    return commit


def tree_rows(session: Session, tree_shas: Sequence[str]) -> list[TreeEntry]:
    if not tree_shas:
        return []
    query = select(TreeEntry).where(TreeEntry.tree_sha.in_(tree_shas))
    return list(session.scalars(query.order_by(TreeEntry.tree_sha, TreeEntry.name)))


def find_entry(session: Session, root_tree: str, path: str) -> FileEntry | None:
    """The entry at path in the tree, or None. The empty path is the root folder."""
    if path in ("", "/"):
        return FileEntry(path="", kind="tree", mode=0o040000, oid=root_tree, size=0)
    tree_sha = root_tree
    parts = path.strip("/").split("/")
    for depth, part in enumerate(parts):
        row = session.get(TreeEntry, (tree_sha, part))
        if row is None:
            return None
        if depth == len(parts) - 1:
            return FileEntry.of(row, "/".join(parts))
        if row.kind != "tree":
            return None
        tree_sha = row.oid
    return None


def list_entries(
    session: Session, root_tree: str, path: str = "", *, recursive: bool = False
) -> Iterator[FileEntry]:
    """Entries under path (files and folders), sorted level by level; EntryNotFound if the
    path is missing. A file path lists that file alone. One query per folder depth."""
    start = find_entry(session, root_tree, path)
    if start is None:
        raise EntryNotFound(f"Entry not found: {path}")
    if not start.is_dir:
        yield start
        return
    level = {start.oid: start.path}
    while level:
        next_level: dict[str, str] = {}
        for row in tree_rows(session, list(level)):
            full = f"{level[row.tree_sha]}/{row.name}" if level[row.tree_sha] else row.name
            entry = FileEntry.of(row, full)
            yield entry
            if recursive and entry.is_dir:
                next_level[entry.oid] = full
        level = next_level
        if not recursive:
            return


def commit_history(
    session: Session, head: str, *, limit: int, offset: int = 0
) -> tuple[list[Commit], bool]:
    """First-parent-then-others history from head, newest first: (page, has_more)."""
    wanted = offset + limit + 1
    seen: set[str] = set()
    ordered: list[Commit] = []
    frontier = [head]
    while frontier and len(ordered) < wanted:
        batch = [sha for sha in frontier if sha not in seen]
        seen.update(batch)
        found = {c.sha: c for c in session.scalars(select(Commit).where(Commit.sha.in_(batch)))}
        frontier = []
        for sha in batch:
            commit = found.get(sha)
            if commit is not None:
                ordered.append(commit)
                frontier.extend(commit.parents)
    ordered.sort(key=lambda c: c.authored_at, reverse=True)
    page = ordered[offset : offset + limit]
    return page, len(ordered) > offset + limit


def linked_sizes(session: Session, repo_id: int, oids: Sequence[str]) -> dict[str, int]:
    """oid -> size of the objects this repo was given, among oids."""
    if not oids:
        return {}
    rows = session.execute(
        select(LfsObject.oid, LfsObject.size)
        .join(RepoLfsObject, RepoLfsObject.oid == LfsObject.oid)
        .where(RepoLfsObject.repo_id == repo_id, LfsObject.oid.in_(list(oids)))
    )
    return {oid: size for oid, size in rows}
