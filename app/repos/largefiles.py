"""A repo's large files (LFS and Xet objects): list them, and delete them for good.

`list_lfs_files` names each object the repo was given with a path where it lies and the ref
that shows it there: the heads of the refs first (`main` before the others), then the rest of
the history; an object no commit points at (uploaded, never committed) has no path.

`permanently_delete_lfs_files` rewrites the history of every ref so that no commit points at
the objects any more — commits keep their authors, dates and messages, those that changed get
new ids — moves the refs to the new commits (compare-and-swap, through the ref service: a
ref that moved meanwhile makes the whole rewrite start again), forgets the old commits, and
takes the objects from the repo. `atrium gc` then deletes the bytes that no other repo holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from dulwich.objects import Commit as GitCommit
from dulwich.objects import ObjectID, ShaFile, Tree
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import Actor, record
from app.blobs import BlobStore
from app.db.base import utcnow
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.errors import Conflict
from app.repos.commits import EMPTY_TREE_SHA, index_commit, row_values
from app.repos.gitobjects import load_object, store_objects
from app.repos.history import chunks, linked
from app.repos.models import Commit, LfsObject, Ref, Repo, RepoCommit, RepoLfsObject, TreeEntry
from app.repos.refs import move_ref
from app.repos.service import DEFAULT_BRANCH, HEADS

REWRITE_ATTEMPTS = 3  # a busy repo's refs may move while its history is rewritten


@dataclass(frozen=True)
class LargeFile:
    oid: str
    size: int
    pushed_at: datetime | None
    filename: str | None
    ref: str | None


def _ref_order(name: str) -> tuple[int, str]:
    if name == HEADS + DEFAULT_BRANCH:
        return 0, name
    return (1 if name.startswith(HEADS) else 2), name


def _short(ref_name: str) -> str:
    return ref_name.removeprefix(HEADS)


class _Paths:
    """Walks trees of the index, each once, noting the first path of each large object."""

    def __init__(self, session: Session):
        self.session = session
        self.seen: set[str] = set()
        self.found: dict[str, tuple[str, str | None]] = {}

    def walk(self, tree_sha: str, ref: str | None) -> None:
        pending = [(tree_sha, "")]
        while pending:
            sha, prefix = pending.pop()
            if sha in self.seen:
                continue
            self.seen.add(sha)
            for row in self.session.scalars(select(TreeEntry).where(TreeEntry.tree_sha == sha)):
                path = prefix + row.name
                if row.kind == "tree":
                    pending.append((row.oid, path + "/"))
                elif row.lfs_oid is not None and row.lfs_oid not in self.found:
                    self.found[row.lfs_oid] = (path, ref)


def list_large_files(session: Session, repo: Repo) -> list[LargeFile]:
    """Every large object the repo holds, by oid."""
    rows = session.execute(
        select(LfsObject.oid, LfsObject.size, RepoLfsObject.created_at)
        .join(RepoLfsObject, RepoLfsObject.oid == LfsObject.oid)
        .where(RepoLfsObject.repo_id == repo.id)
        .order_by(LfsObject.oid)
    ).all()
    if not rows:
        return []
    paths = _Paths(session)
    refs = session.execute(
        select(Ref.name, Commit.tree_sha)
        .join(Commit, Commit.sha == Ref.commit_sha)
        .where(Ref.repo_id == repo.id)
    ).all()
    for name, tree_sha in sorted(refs, key=lambda ref: _ref_order(ref[0])):
        paths.walk(tree_sha, _short(name))
    if len(paths.found) < len(rows):
        history = session.scalars(
            select(Commit.tree_sha)
            .join(RepoCommit, RepoCommit.commit_sha == Commit.sha)
            .where(RepoCommit.repo_id == repo.id)
        )
        for tree_sha in history.all():
            paths.walk(tree_sha, None)
    files = []
    for oid, size, created_at in rows:
        filename, ref = paths.found.get(oid, (None, None))
        files.append(LargeFile(oid, size, created_at, filename, ref))
    return files


# --- the rewrite --------------------------------------------------------------------------


@dataclass
class _Rewrite:
    """New trees and commits of a history without some large objects; memoized by sha."""

    session: Session
    blobs: BlobStore
    oids: frozenset[str]

    def __post_init__(self) -> None:
        self.trees: dict[str, str] = {}
        self.commits: dict[str, str] = {}
        self.objects: list[ShaFile] = []
        self.rows: list[TreeEntry] = []
        self.new_commits: list[GitCommit] = []

    def tree(self, sha: str) -> str:
        """The id of the tree without the objects (EMPTY_TREE_SHA when nothing is left)."""
        done = self.trees.get(sha)
        if done is not None:
            return done
        rows = list(self.session.scalars(select(TreeEntry).where(TreeEntry.tree_sha == sha)))
        kept: list[TreeEntry] = []
        changed = False
        for row in rows:
            if row.kind == "tree":
                sub = self.tree(row.oid)
                if sub != row.oid:
                    changed = True
                    if sub == EMPTY_TREE_SHA:
                        continue  # git has no empty folders
                    row = _entry(row, oid=sub)
                kept.append(row)
            elif row.lfs_oid in self.oids:
                changed = True
            else:
                kept.append(row)
        if not changed:
            self.trees[sha] = sha
            return sha
        tree = Tree()
        for row in kept:
            tree.add(row.name.encode(), row.mode, ObjectID(row.oid.encode()))
        new = tree.id.decode()
        if kept:
            self.objects.append(tree)
            self.rows += [_entry(row, tree_sha=new) for row in kept]
        self.trees[sha] = new
        return new

    def commit(self, head: str) -> str:
        """The id of head's rewritten commit; parents first, without recursion."""
        pending = [head]
        while pending:
            sha = pending[-1]
            if sha in self.commits:
                pending.pop()
                continue
            row = self.session.get(Commit, sha)
            assert row is not None, f"commit {sha} is not indexed"
            missing = [p for p in row.parents if p not in self.commits]
            if missing:
                pending.extend(missing)
                continue
            pending.pop()
            tree = self.tree(row.tree_sha)
            parents = [self.commits[p] for p in row.parents]
            if tree == row.tree_sha and parents == row.parents:
                self.commits[sha] = sha
                continue
            original = load_object(self.blobs, sha)
            assert isinstance(original, GitCommit)
            new = original.copy()
            assert isinstance(new, GitCommit)
            new.tree = ObjectID(tree.encode())
            new.parents = [ObjectID(p.encode()) for p in parents]
            new.gpgsig = None  # a signature of other content
            self.objects.append(new)
            self.new_commits.append(new)
            self.commits[sha] = new.id.decode()
        return self.commits[head]


TREE_KEY = ["tree_sha", "name"]


def _entry(row: TreeEntry, **changes: object) -> TreeEntry:
    return TreeEntry(**{**row_values(row), **changes})


class _Moved(Exception):
    """A ref moved while its history was rewritten: the transaction rolls back."""


def delete_large_files(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    repo_id: int,
    oids: Iterable[str],
    *,
    actor: Actor | None = None,
) -> int:
    """Delete the repo's large objects among oids for good; returns how many it held."""
    wanted = frozenset(oids)
    for _ in range(REWRITE_ATTEMPTS):
        with factory() as session:
            held = linked(session, RepoLfsObject.oid, repo_id, wanted)
            if not held:
                return 0
            refs = dict(
                session.execute(select(Ref.name, Ref.commit_sha).where(Ref.repo_id == repo_id))
                .tuples()
                .all()
            )
            rewrite = _Rewrite(session, blobs, frozenset(held))
            moves = {name: rewrite.commit(sha) for name, sha in refs.items()}
            needed = len(rewrite.objects), len(rewrite.rows), len(rewrite.new_commits)
            # Recorded commits no ref reaches any more are forgotten too if they show an object;
            # their rewritten versions are not kept.
            history = session.scalars(
                select(RepoCommit.commit_sha).where(RepoCommit.repo_id == repo_id)
            ).all()
            stale = [sha for sha in history if rewrite.commit(sha) != sha]
            del rewrite.objects[needed[0] :], rewrite.rows[needed[1] :]
            del rewrite.new_commits[needed[2] :]
        store_objects(blobs, rewrite.objects)  # durable before any ref points at them
        try:
            with write_transaction(factory) as session:
                repo = session.get(Repo, repo_id)
                assert repo is not None
                insert_ignore(session, TreeEntry, [row_values(r) for r in rewrite.rows], TREE_KEY)
                for commit in rewrite.new_commits:
                    index_commit(session, repo, commit, [])
                for name, old in sorted(refs.items()):
                    new = moves[name]
                    if new != old and not move_ref(
                        session, repo, name, old, new, cause="rewrite", actor=actor
                    ):
                        raise _Moved
                for batch in chunks(stale):
                    session.execute(
                        delete(RepoCommit).where(
                            RepoCommit.repo_id == repo_id, RepoCommit.commit_sha.in_(batch)
                        )
                    )
                for batch in chunks(held):
                    session.execute(
                        delete(RepoLfsObject).where(
                            RepoLfsObject.repo_id == repo_id, RepoLfsObject.oid.in_(batch)
                        )
                    )
                repo.updated_at = utcnow()
                if actor is not None:
                    record(session, actor, "repo.lfs_delete", repo.repo_id, objects=len(held))
        except _Moved:
            continue
        return len(held)
    raise Conflict("The repo kept changing while its history was rewritten; try again")


def describe(files: Iterable[LargeFile]) -> Iterator[dict[str, object]]:
    """The items of `GET …/lfs-files` as huggingface_hub's `LFSFileInfo` reads them."""
    for item in files:
        yield {
            "fileOid": item.oid,
            "oid": item.oid,
            "size": item.size,
            "filename": item.filename or "",
            "ref": item.ref,
            "pushedAt": (item.pushed_at or utcnow()).isoformat().replace("+00:00", "Z"),
        }
