"""Creating commits: build trees with dulwich, store objects, then move the ref by CAS.

Order of durability (ARCHITECTURE.md §5): every new git object is written to the blob store
first; then one database transaction indexes the new trees and commit and moves the ref with
`UPDATE refs SET commit_sha=:new WHERE commit_sha=:old`. A crash before the transaction leaves
only unreferenced objects for `atrium gc`; a crash after it leaves a complete revision.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dulwich.objects import Blob, ObjectID, ShaFile, Tree
from dulwich.objects import Commit as GitCommit
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import Actor
from app.auth.models import User
from app.blobs import BlobStore
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.errors import BadRequest, EntryNotFound, PreconditionFailed, RevisionNotFound
from app.quotas.service import record_git_blobs
from app.repos.gitobjects import (
    EMPTY_TREE_SHA,
    MODE_FILE,
    MODE_TREE,
    lfs_pointer_blob,
    parse_lfs_pointer,
    store_objects,
)
from app.repos.models import Commit, LfsObject, Ref, Repo, RepoCommit, RepoLfsObject, TreeEntry
from app.repos.paths import validate_path
from app.repos.refs import Cause, move_ref
from app.repos.service import HEADS, FileEntry, resolve_revision

CAS_RETRIES = 50  # concurrent commits without parent_commit are re-applied on the new head
GITATTRIBUTES = b"""*.7z filter=lfs diff=lfs merge=lfs -text
*.arrow filter=lfs diff=lfs merge=lfs -text
*.bin filter=lfs diff=lfs merge=lfs -text
*.bz2 filter=lfs diff=lfs merge=lfs -text
*.ckpt filter=lfs diff=lfs merge=lfs -text
*.ftz filter=lfs diff=lfs merge=lfs -text
*.gz filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.joblib filter=lfs diff=lfs merge=lfs -text
*.lz4 filter=lfs diff=lfs merge=lfs -text
*.mlmodel filter=lfs diff=lfs merge=lfs -text
*.model filter=lfs diff=lfs merge=lfs -text
*.msgpack filter=lfs diff=lfs merge=lfs -text
*.npy filter=lfs diff=lfs merge=lfs -text
*.npz filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.ot filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pb filter=lfs diff=lfs merge=lfs -text
*.pickle filter=lfs diff=lfs merge=lfs -text
*.pkl filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.rar filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
saved_model/**/* filter=lfs diff=lfs merge=lfs -text
*.tar.* filter=lfs diff=lfs merge=lfs -text
*.tar filter=lfs diff=lfs merge=lfs -text
*.tflite filter=lfs diff=lfs merge=lfs -text
*.tgz filter=lfs diff=lfs merge=lfs -text
*.wasm filter=lfs diff=lfs merge=lfs -text
*.xz filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
*.zst filter=lfs diff=lfs merge=lfs -text
*tfevents* filter=lfs diff=lfs merge=lfs -text
"""


@dataclass(frozen=True)
class AddFile:
    """A regular file stored as a git blob."""

    path: str
    content: bytes


@dataclass(frozen=True)
class AddLfsFile:
    """A large file: a git-lfs pointer to an object already uploaded to this repo."""

    path: str
    oid: str
    size: int | None = None  # absent for copies (hf-protocol.md §11)


@dataclass(frozen=True)
class DeletePath:
    path: str
    folder: bool = False


@dataclass(frozen=True)
class KeepFile:
    """A file of another revision of this repo, placed as it is (its object already stored):
    what a merge applies. README.md content rides along for the card's refresh."""

    path: str
    entry: FileEntry
    readme: bytes | None = None


Operation = AddFile | AddLfsFile | DeletePath | KeepFile


@dataclass(frozen=True)
class Author:
    name: str
    email: str

    @classmethod
    def of(cls, user: User) -> Author:
        return cls(name=user.name, email=user.email or f"{user.name}@users.atrium")


@dataclass
class _Node:
    """A folder being rebuilt: its current entries, and changed subfolders by name."""

    entries: dict[str, TreeEntry]
    children: dict[str, _Node] = field(default_factory=dict)


@dataclass(frozen=True)
class CommitResult:
    sha: str
    parent: str | None
    tree_sha: str


# Hook run inside the ref-moving transaction (cards, search index, …); set by the app.
AfterCommit = Callable[[Session, Repo, str, str, "CommitPlan"], None]


@dataclass
class CommitPlan:
    """Objects and index rows of a commit, ready to be made visible."""

    objects: list[ShaFile] = field(default_factory=list)
    rows: list[TreeEntry] = field(default_factory=list)
    tree_sha: str = EMPTY_TREE_SHA
    readme: bytes | None = None  # README.md content when this commit changed it


class CommitBuilder:
    """Applies operations to a base tree read from the database index."""

    def __init__(self, session: Session | None, base_tree: str | None):
        self.session = session
        self.root = _Node(self._load(base_tree))
        self.plan = CommitPlan()

    def _load(self, tree_sha: str | None) -> dict[str, TreeEntry]:
        if tree_sha is None or tree_sha == EMPTY_TREE_SHA or self.session is None:
            return {}
        rows = self.session.scalars(select(TreeEntry).where(TreeEntry.tree_sha == tree_sha))
        return {row.name: _detached(row) for row in rows}

    def _folder(self, parts: list[str], create: bool) -> _Node | None:
        node = self.root
        for depth, part in enumerate(parts):
            child = node.children.get(part)
            if child is None:
                entry = node.entries.get(part)
                if entry is not None and entry.kind != "tree":
                    where = "/".join(parts[: depth + 1])
                    raise BadRequest(f"{where!r} is a file, so it cannot contain other files")
                if entry is None and not create:
                    return None
                child = _Node(self._load(entry.oid if entry else None))
                node.children[part] = child
            node = child
        return node

    def add(self, path: str, blob: Blob, *, size: int, lfs: tuple[str, int] | None) -> None:
        *folders, name = validate_path(path).split("/")
        node = self._folder(folders, create=True)
        assert node is not None
        if name in node.children or (name in node.entries and node.entries[name].kind == "tree"):
            raise BadRequest(f"{path!r} is a folder, so it cannot be replaced by a file")
        self.plan.objects.append(blob)
        node.entries[name] = TreeEntry(
            name=name,
            kind="blob",
            mode=MODE_FILE,
            oid=blob.id.decode(),
            size=size,
            lfs_oid=lfs[0] if lfs else None,
            lfs_pointer_size=len(blob.data) if lfs else None,
            xet_hash=self._xet_hash(lfs[0]) if lfs else None,
        )
        if path == "README.md":
            self.plan.readme = blob.data if lfs is None else None

    def place(self, path: str, entry: FileEntry, readme: bytes | None) -> None:
        """An existing object at path, with its mode (executable, symlink) kept."""
        *folders, name = validate_path(path).split("/")
        node = self._folder(folders, create=True)
        assert node is not None
        if name in node.children or (name in node.entries and node.entries[name].kind == "tree"):
            raise BadRequest(f"{path!r} is a folder, so it cannot be replaced by a file")
        node.entries[name] = TreeEntry(
            name=name,
            kind="blob",
            mode=entry.mode,
            oid=entry.oid,
            size=entry.size,
            lfs_oid=entry.lfs_oid,
            lfs_pointer_size=entry.lfs_pointer_size,
            xet_hash=entry.xet_hash,
        )
        if path == "README.md":
            self.plan.readme = readme

    def _xet_hash(self, lfs_oid: str) -> str | None:
        """The Xet file of an LFS object, listed as `xetHash` so Xet clients can skip a HEAD."""
        if self.session is None:
            return None
        return self.session.scalar(select(LfsObject.xet_hash).where(LfsObject.oid == lfs_oid))

    def delete(self, path: str, *, folder: bool) -> None:
        *folders, name = validate_path(path.rstrip("/")).split("/")
        node = self._folder(folders, create=False)
        entry = node.entries.get(name) if node else None
        if node is None or entry is None or (folder and entry.kind != "tree"):
            kind = "folder" if folder else "file"
            raise EntryNotFound(f"A {kind} with this name doesn't exist: {path}")
        del node.entries[name]
        node.children.pop(name, None)

    def build(self) -> CommitPlan:
        self.plan.tree_sha = self._write(self.root)
        return self.plan

    def _write(self, node: _Node) -> str:
        for name, child in node.children.items():
            sha = self._write(child)
            if sha == EMPTY_TREE_SHA:
                node.entries.pop(name, None)  # git has no empty folders
            else:
                node.entries[name] = TreeEntry(
                    name=name, kind="tree", mode=MODE_TREE, oid=sha, size=0
                )
        tree = Tree()
        for name, entry in node.entries.items():
            tree.add(name.encode(), entry.mode, ObjectID(entry.oid.encode()))
        sha = tree.id.decode()
        if node.entries:
            self.plan.objects.append(tree)
            for entry in node.entries.values():
                self.plan.rows.append(_detached(entry, tree_sha=sha))
        return sha


def _detached(row: TreeEntry, tree_sha: str | None = None) -> TreeEntry:
    return TreeEntry(
        tree_sha=tree_sha or row.tree_sha,
        name=row.name,
        kind=row.kind,
        mode=row.mode,
        oid=row.oid,
        size=row.size,
        lfs_oid=row.lfs_oid,
        lfs_pointer_size=row.lfs_pointer_size,
        xet_hash=row.xet_hash,
    )


def lfs_size_for(session: Session, repo: Repo, op: AddLfsFile) -> int:
    """The size of an object this repo was given; refuses unknown oids and size mismatches."""
    known = session.scalar(
        select(LfsObject.size)
        .join(RepoLfsObject, RepoLfsObject.oid == LfsObject.oid)
        .where(RepoLfsObject.repo_id == repo.id, LfsObject.oid == op.oid)
    )
    if known is None:
        raise BadRequest(
            f"LFS object {op.oid} for {op.path!r} was never uploaded to this repo; upload it first"
        )
    if op.size is not None and op.size != known:
        raise BadRequest(
            f"LFS object {op.oid} for {op.path!r} has size {known}, not the declared {op.size}"
        )
    return known


def make_commit_object(
    tree_sha: str, parents: Sequence[str], author: Author, title: str, description: str
) -> GitCommit:
    now = int(time.time())
    commit = GitCommit()
    commit.tree = ObjectID(tree_sha.encode())
    commit.parents = [ObjectID(p.encode()) for p in parents]
    ident = f"{author.name} <{author.email}>".encode()
    commit.author = commit.committer = ident
    commit.author_time = commit.commit_time = now
    commit.author_timezone = commit.commit_timezone = 0
    message = title.strip() or "Update files"
    if description.strip():
        message += "\n\n" + description.strip()
    commit.message = (message + "\n").encode()
    return commit


def commit_row(commit: GitCommit) -> Commit:
    text = commit.message.decode("utf-8", "replace").strip("\n")
    title, _, body = text.partition("\n")
    author = commit.author.decode("utf-8", "replace")
    name, _, email = author.partition(" <")
    return Commit(
        sha=commit.id.decode(),
        tree_sha=commit.tree.decode(),
        parents=[p.decode() for p in commit.parents],
        author_name=name,
        author_email=email.rstrip(">"),
        authored_at=datetime.fromtimestamp(commit.author_time, UTC),
        title=title,
        message=body.strip("\n"),
    )


def index_commit(
    session: Session, repo: Repo, commit: GitCommit, rows: Sequence[TreeEntry]
) -> None:
    """Record a commit, its new tree rows, their files as held by the repo (for its
    namespace's storage usage) and its repo membership (idempotent)."""
    insert_ignore(session, TreeEntry, [row_values(r) for r in rows], ["tree_sha", "name"])
    record_git_blobs(session, repo.id, rows)
    row = commit_row(commit)
    insert_ignore(session, Commit, [row_values(row)], ["sha"])
    insert_ignore(
        session,
        RepoCommit,
        [{"repo_id": repo.id, "commit_sha": row.sha}],
        ["repo_id", "commit_sha"],
    )


def row_values(row: TreeEntry | Commit) -> dict[str, object]:
    """A row's columns as the values of an insert."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


def create_commit(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    repo_id: int,
    branch: str,
    operations: Sequence[Operation],
    *,
    author: Author,
    title: str,
    description: str = "",
    parent_commit: str | None = None,
    after_commit: AfterCommit | None = None,
    actor: Actor | None = None,
    cause: Cause = "commit",
) -> CommitResult:
    """Apply operations on top of branch and move it; retried on concurrent commits unless a
    parent_commit pins the base (then a moved branch is 412, as huggingface.co answers).
    The ref moves through the ref service (`app.repos.refs`): its event, and with an actor
    its audit line, are in the transaction that moves it."""
    ref_name = branch if branch.startswith("refs/") else HEADS + branch
    for _attempt in range(CAS_RETRIES):
        with factory() as session:
            repo = session.get(Repo, repo_id)
            if repo is None:
                raise RevisionNotFound("repository was deleted")
            head = session.scalar(
                select(Ref.commit_sha).where(Ref.repo_id == repo.id, Ref.name == ref_name)
            )
            if head is None:
                raise RevisionNotFound(f"Invalid rev id: {branch}")
            if parent_commit is not None and resolve_revision(session, repo, parent_commit) != head:
                raise PreconditionFailed()
            base_tree = session.scalar(select(Commit.tree_sha).where(Commit.sha == head))
            plan = _plan(session, repo, base_tree, operations)
        commit = make_commit_object(plan.tree_sha, [head], author, title, description)
        store_objects(blobs, [*plan.objects, commit])
        with write_transaction(factory) as session:
            repo = session.get(Repo, repo_id)
            assert repo is not None
            moved = move_ref(
                session, repo, ref_name, head, commit.id.decode(), cause=cause, actor=actor
            )
            if not moved:
                if parent_commit is not None:
                    raise PreconditionFailed()
                session.rollback()
                continue
            index_commit(session, repo, commit, plan.rows)
            if after_commit is not None:
                after_commit(session, repo, ref_name, commit.id.decode(), plan)
        return CommitResult(sha=commit.id.decode(), parent=head, tree_sha=plan.tree_sha)
    raise PreconditionFailed("Too many concurrent commits on this branch; retry later")


def _plan(
    session: Session, repo: Repo, base_tree: str | None, operations: Sequence[Operation]
) -> CommitPlan:
    builder = CommitBuilder(session, base_tree)
    for op in operations:
        if isinstance(op, AddFile):
            pointer = parse_lfs_pointer(op.content)
            blob = Blob.from_string(op.content)
            if pointer is not None:
                # A pointer committed as a regular file must name an object this repo has.
                size = lfs_size_for(session, repo, AddLfsFile(op.path, pointer.oid, pointer.size))
                builder.add(op.path, blob, size=size, lfs=(pointer.oid, size))
            else:
                builder.add(op.path, blob, size=len(op.content), lfs=None)
        elif isinstance(op, AddLfsFile):
            size = lfs_size_for(session, repo, op)
            builder.add(op.path, lfs_pointer_blob(op.oid, size), size=size, lfs=(op.oid, size))
        elif isinstance(op, KeepFile):
            builder.place(op.path, op.entry, op.readme)
        else:
            builder.delete(op.path, folder=op.folder)
    return builder.build()
