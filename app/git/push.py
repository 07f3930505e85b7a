"""Applying a push: the same checks and the same ref compare-and-swap as an API commit.

For each ref command `old new ref` git sends, in this order:

1. the ref must be a branch or a tag with a valid name, or an existing pull request's
   `refs/pr/N` (updated, never created or deleted: pull requests open through the API); the
   pusher must be allowed to move it (`may_push`: writers anywhere, a pull request's author
   only their own open one);
2. every commit new to the repo must be in the pack, and every object the new commits and
   trees refer to must be in the pack or already in this repo's history, so a push can never
   reach another repo's objects by naming (or delta-basing on) their sha;
3. file paths follow the API's rules (no `..`, `.git`, control characters; no submodules);
4. every git-lfs pointer in a new blob must name an object uploaded to *this* repo and
   verified, with the pointer's size (as `app.repos.commits.lfs_size_for` does for the API);
   the new regular files must fit the namespace's storage quota (`app.quotas.service`; LFS
   objects were counted when they were uploaded);
5. then one transaction moves the ref by compare-and-swap from `old` (so a push racing an API
   commit loses cleanly and is told to fetch first), indexes the new commits and trees, and
   refreshes the card metadata when `main` moves, like `create_commit` + `update_card`.
   Before that, the pickle files of the new trees are scanned (`app.security.service`).

A refused command answers `ng <ref> <reason>`, which git prints as `! [remote rejected]`.
Git itself refuses non-fast-forward updates unless `--force`; a forced update is accepted, as
on huggingface.co, because the server cannot tell it apart from a deliberate rewrite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from dulwich.objects import S_ISGITLINK
from dulwich.objects import Commit as GitCommit
from dulwich.refs import Ref as RefName
from dulwich.refs import check_ref_format
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import Actor
from app.blobs import BlobStore
from app.blobs.base import MiB
from app.config import Settings
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.errors import AtriumError, BadRequest, QuotaExceeded
from app.git.incoming import Incoming
from app.git.models import GitTag
from app.quotas.service import RepoQuota, Upload, record_git_blobs, regular_files
from app.repos.commits import CommitPlan, index_commit
from app.repos.gitobjects import MODE_TREE, load_object, parse_lfs_pointer
from app.repos.history import History, chunks, known_commits
from app.repos.manage import PULLS, update_card
from app.repos.models import Commit, LfsObject, Repo, RepoLfsObject, TreeEntry
from app.repos.paths import validate_branch, validate_path
from app.repos.refs import move_ref
from app.repos.service import DEFAULT_BRANCH, HEADS, TAGS

ZERO_SHA = "0" * 40
# Raises when the pusher may not move that ref (app.discussions.service.require_push).
MayPush = Callable[[Session, str], None]


# As on the Hub: regular git files are small (cards, configs, code); a large one is read whole
# for every download and every scan, so it must travel as an LFS object instead.
MAX_REGULAR_FILE = 10 * MiB


def not_in_repo(sha: str, what: str) -> str:
    """Why a push that reuses an object it may not (or cannot) is refused: the same words
    whether the object is another repo's or exists nowhere, so the answer is no oracle."""
    return f"object {sha[:12]} ({what}) is not in the pack or the repo"


class Refused(Exception):
    """A ref command that is not applied; the message is the one line git shows."""


@dataclass(frozen=True)
class RefCommand:
    ref: str
    old: str | None  # None: create the ref
    new: str | None  # None: delete the ref

    @classmethod
    def parse(cls, old: bytes, new: bytes, ref: bytes) -> RefCommand:
        def sha(value: bytes) -> str | None:
            text = value.decode("ascii")
            return None if text == ZERO_SHA else text

        return cls(ref.decode("utf-8", "replace"), sha(old), sha(new))


@dataclass
class _Update:
    """A checked command: what its transaction writes. `old` and `new` are the commits the
    `refs` row moves between (an annotated tag's commit, not the tag object)."""

    ref: str
    old: str | None
    new: str | None
    tag_sha: str | None = None  # the annotated tag object the ref now names for git
    commits: list[GitCommit] = field(default_factory=list)
    rows: list[TreeEntry] = field(default_factory=list)
    plan: CommitPlan | None = None  # for the card hook; None for deletions


class Push:
    """One push to one repo: check each command against the pack and the repo, then apply."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        blobs: BlobStore,
        repo_id: int,
        incoming: Incoming,
        settings: Settings,
        actor: Actor,
        may_push: MayPush,
    ):
        self.may_push = may_push
        self.factory = factory
        self.blobs = blobs
        self.repo_id = repo_id
        self.incoming = incoming
        self.settings = settings
        self.actor = actor
        self.new_files: dict[str, int] = {}  # regular files of the commands checked so far

    def apply(self, commands: Sequence[RefCommand], *, atomic: bool) -> list[tuple[str, str]]:
        """(ref, "ok" or the reason it was refused) for each command, in order."""
        checked: list[_Update | Refused] = []
        for command in commands:
            try:
                with self.factory() as session:
                    checked.append(self._check(session, command))
            except Refused as refused:
                checked.append(refused)
        if atomic:
            return self._apply_atomic(commands, checked)
        return [
            (c.ref, str(u) if isinstance(u, Refused) else self._commit([u]))
            for c, u in zip(commands, checked, strict=True)
        ]

    def _apply_atomic(
        self, commands: Sequence[RefCommand], checked: list[_Update | Refused]
    ) -> list[tuple[str, str]]:
        if any(isinstance(u, Refused) for u in checked):
            return [
                (c.ref, str(u) if isinstance(u, Refused) else "atomic push failed")
                for c, u in zip(commands, checked, strict=True)
            ]
        status = self._commit([u for u in checked if isinstance(u, _Update)])
        return [(c.ref, status) for c in commands]

    def _commit(self, updates: list[_Update]) -> str:
        """Apply updates in one transaction: "ok", or why it was rolled back."""
        with write_transaction(self.factory) as session:
            repo = session.get(Repo, self.repo_id)
            if repo is None:
                return "repository was deleted"
            for update in updates:
                if not _move(session, repo, update, self.actor):
                    session.rollback()
                    return f"fetch first: {update.ref} moved while pushing"
                for commit in update.commits:
                    index_commit(session, repo, commit, [])
                _index_rows(session, update.rows)
                record_git_blobs(session, repo.id, update.rows)
                if update.plan is not None and update.new is not None:
                    update_card(session, repo, update.ref, update.new, update.plan)
        return "ok"

    # --- checks ----------------------------------------------------------------------------

    def _check(self, session: Session, command: RefCommand) -> _Update:
        _check_ref_name(command.ref)
        if command.ref.startswith(PULLS) and (command.old is None or command.new is None):
            raise Refused("pull requests are opened and closed through the API or the web")
        try:
            self.may_push(session, command.ref)
        except AtriumError as exc:
            raise Refused(exc.message) from None
        old = _stored_value(session, self.repo_id, command)
        if command.new is None:
            if command.ref == HEADS + DEFAULT_BRANCH:
                raise Refused(f"refusing to delete the default branch {DEFAULT_BRANCH}")
            return _Update(command.ref, old, None)
        tip = self._peel(session, command)
        commits = self._new_commits(session, tip)
        check = _TreeCheck(session, self.repo_id, self.incoming)
        rows = check.run(commits, extra=self.incoming.delta_bases)
        self._check_quota(session, rows)
        plan = self._plan(session, command.ref, old, tip, rows)
        tag_sha = command.new if command.new != tip else None
        return _Update(command.ref, old, tip, tag_sha, commits, rows, plan)

    def _check_quota(self, session: Session, rows: list[TreeEntry]) -> None:
        """The push's new regular files must fit the namespace's quota (its LFS objects were
        counted when they were uploaded); the files of earlier commands of this push count."""
        files = regular_files(rows)
        files.update(self.new_files)
        try:
            RepoQuota(self.settings, self.repo_id).check(session, Upload(git=files))
        except QuotaExceeded as exc:
            raise Refused(exc.message) from None
        self.new_files = files

    def _peel(self, session: Session, command: RefCommand) -> str:
        """The commit a new ref value names; tags may be annotated, branches may not."""
        assert command.new is not None
        sha = command.new
        tag = self.incoming.tags.get(sha)
        if tag is not None:
            if not command.ref.startswith(TAGS):
                raise Refused("a branch must point to a commit, not a tag object")
            _cls, target = tag.object
            sha = target.decode("ascii")
        elif command.ref.startswith(TAGS):
            known = session.scalar(
                select(GitTag.commit_sha).where(
                    GitTag.repo_id == self.repo_id, GitTag.tag_sha == sha
                )
            )
            sha = known or sha  # an annotated tag of this repo, pushed under another name
        if sha not in self.incoming.commits and not known_commits(session, self.repo_id, [sha]):
            raise Refused(f"{command.new[:12]} is not a commit of this push or of this repo")
        return sha

    def _new_commits(self, session: Session, tip: str) -> list[GitCommit]:
        """Commits of the pack reachable from tip, parents first; every other parent must
        already belong to this repo."""
        order: list[GitCommit] = []
        outside: set[str] = set()
        done: set[str] = set()
        stack: list[tuple[str, bool]] = [(tip, False)]
        while stack:
            sha, expanded = stack.pop()
            commit = self.incoming.commits.get(sha)
            if commit is None:
                outside.add(sha)
            elif expanded:
                order.append(commit)
            elif sha not in done:
                done.add(sha)
                stack.append((sha, True))
                stack.extend((p.decode("ascii"), False) for p in commit.parents)
        missing = outside - known_commits(session, self.repo_id, outside)
        if missing:
            raise Refused(f"missing commit {sorted(missing)[0][:12]}: it is not in the pack")
        return order

    def _plan(
        self, session: Session, ref: str, old: str | None, tip: str, rows: list[TreeEntry]
    ) -> CommitPlan:
        """What the card hook needs: the new root tree and README.md when it changed."""
        tree = _commit_tree(session, self.incoming, tip)
        plan = CommitPlan(rows=rows, tree_sha=tree)
        if ref != HEADS + DEFAULT_BRANCH:
            return plan
        readme = _readme_oid(session, self.incoming, tree)
        before = None
        if old is not None:
            old_tree = session.scalar(select(Commit.tree_sha).where(Commit.sha == old))
            before = _readme_oid(session, self.incoming, old_tree) if old_tree else None
        if readme is not None and readme != before:
            data = load_object(self.blobs, readme).as_raw_string()
            plan.readme = None if parse_lfs_pointer(data) else data
        return plan


class _TreeCheck:
    """Walks the trees new to this push; finds the history objects they reuse; builds rows."""

    def __init__(self, session: Session, repo_id: int, incoming: Incoming):
        self.session = session
        self.repo_id = repo_id
        self.incoming = incoming
        self.reused: dict[str, str] = {}  # sha not in the pack -> path (or "delta base")
        self.pointers: dict[str, tuple[int, str]] = {}  # lfs oid -> (size, path)
        self.new_trees: dict[str, str] = {}  # tree sha -> path (for messages)

    def run(self, commits: list[GitCommit], extra: Iterable[str]) -> list[TreeEntry]:
        for commit in commits:
            self._walk(commit.tree.decode("ascii"), "")
        for sha in extra:
            self.reused.setdefault(sha, "delta base")
        history = History(self.session, self.repo_id)
        boundary = {p.decode("ascii") for c in commits for p in c.parents}
        found = history.find(set(self.reused), boundary - set(self.incoming.commits))
        missing = set(self.reused) - set(found)
        if missing:
            sha = sorted(missing)[0]
            raise Refused(not_in_repo(sha, self.reused[sha]))
        _check_lfs(self.session, self.repo_id, self.pointers)
        return self._rows(found)

    def _walk(self, root: str, root_path: str) -> None:
        stack = [(root, root_path)]
        while stack:
            sha, path = stack.pop()
            tree = self.incoming.trees.get(sha)
            if tree is None:
                self.reused.setdefault(sha, path or "root tree")
                continue
            if sha in self.new_trees:
                continue
            self.new_trees[sha] = path
            for entry in tree.iteritems():
                child = f"{path}/{_name(entry.path, path)}" if path else _name(entry.path, path)
                self._entry(entry.mode, entry.sha.decode("ascii"), child, stack)

    def _entry(self, mode: int, sha: str, path: str, stack: list[tuple[str, str]]) -> None:
        if S_ISGITLINK(mode):
            raise Refused(f"{path!r} is a submodule; submodules are not supported")
        is_tree = mode == MODE_TREE
        if is_tree:
            if sha in self.incoming.blobs:
                raise Refused(f"{path!r} is a folder entry that names a file object")
            stack.append((sha, path))
            return
        blob = self.incoming.blobs.get(sha)
        if blob is None:
            if sha in self.incoming.trees:
                raise Refused(f"{path!r} is a file entry that names a folder object")
            self.reused.setdefault(sha, path)
        elif blob.pointer is not None:
            self.pointers.setdefault(blob.pointer.oid, (blob.pointer.size, path))
        elif blob.size > MAX_REGULAR_FILE:
            raise Refused(
                f"{path!r} is {blob.size / MiB:.1f} MiB: files over {MAX_REGULAR_FILE // MiB} MiB "
                "must be stored with git-lfs (git lfs track, then commit again)"
            )

    def _rows(self, found: dict[str, TreeEntry | None]) -> list[TreeEntry]:
        rows = []
        for tree_sha in self.new_trees:
            for entry in self.incoming.trees[tree_sha].iteritems():
                sha = entry.sha.decode("ascii")
                rows.append(self._row(tree_sha, entry.path.decode(), entry.mode, sha, found))
        return rows

    def _row(
        self, tree_sha: str, name: str, mode: int, sha: str, found: dict[str, TreeEntry | None]
    ) -> TreeEntry:
        row = TreeEntry(tree_sha=tree_sha, name=name, mode=mode, oid=sha, size=0)
        row.kind = "tree" if mode == MODE_TREE else "blob"
        blob = self.incoming.blobs.get(sha)
        known = found.get(sha)
        if blob is not None:
            pointer = blob.pointer
            row.size = pointer.size if pointer else blob.size
            row.lfs_oid = pointer.oid if pointer else None
            row.lfs_pointer_size = blob.size if pointer else None
        elif known is not None and row.kind == "blob":
            row.size, row.lfs_oid = known.size, known.lfs_oid
            row.lfs_pointer_size, row.xet_hash = known.lfs_pointer_size, known.xet_hash
        return row


def _name(raw: bytes, parent: str) -> str:
    try:
        name = raw.decode("utf-8")
        validate_path(f"{parent}/{name}" if parent else name)
    except (UnicodeDecodeError, BadRequest) as exc:
        reason = exc.message if isinstance(exc, BadRequest) else "file name is not UTF-8"
        raise Refused(reason) from None
    return name


def _check_ref_name(ref: str) -> None:
    if ref.startswith(PULLS):
        number = ref.removeprefix(PULLS)
        if number.isdigit() and not number.startswith("0"):
            return
        raise Refused(f"invalid pull request ref {ref!r}")
    for prefix in (HEADS, TAGS):
        if ref.startswith(prefix):
            try:
                validate_branch(ref[len(prefix) :])
            except BadRequest as exc:
                raise Refused(exc.message) from None
            if check_ref_format(RefName(ref.encode())):
                return
            raise Refused(f"invalid ref name {ref!r}")
    raise Refused(
        "only branches (refs/heads/), tags (refs/tags/) and pull requests (refs/pr/N) can be pushed"
    )


def _check_lfs(session: Session, repo_id: int, pointers: dict[str, tuple[int, str]]) -> None:
    """Every pointer must name an object uploaded to this repo, with that size."""
    sizes: dict[str, int] = {}
    for batch in chunks(pointers):
        rows = session.execute(
            select(LfsObject.oid, LfsObject.size)
            .join(RepoLfsObject, RepoLfsObject.oid == LfsObject.oid)
            .where(RepoLfsObject.repo_id == repo_id, LfsObject.oid.in_(batch))
        ).tuples()
        sizes.update((oid, size) for oid, size in rows)
    for oid, (size, path) in sorted(pointers.items(), key=lambda item: item[1][1]):
        if oid not in sizes:
            raise Refused(f"LFS object {oid[:12]} of {path!r} was not uploaded; run git lfs push")
        if sizes[oid] != size:
            raise Refused(f"LFS pointer of {path!r} says {size} bytes, the object has {sizes[oid]}")


def _commit_tree(session: Session, incoming: Incoming, sha: str) -> str:
    commit = incoming.commits.get(sha)
    if commit is not None:
        return commit.tree.decode("ascii")
    tree = session.scalar(select(Commit.tree_sha).where(Commit.sha == sha))
    assert tree is not None  # _peel checked that the commit belongs to the repo
    return tree


def _readme_oid(session: Session, incoming: Incoming, tree_sha: str) -> str | None:
    tree = incoming.trees.get(tree_sha)
    if tree is not None:
        for entry in tree.iteritems():
            if entry.path == b"README.md" and entry.mode != MODE_TREE:
                return entry.sha.decode("ascii")
        return None
    row = session.get(TreeEntry, (tree_sha, "README.md"))
    return row.oid if row is not None and row.kind == "blob" else None


def _stored_value(session: Session, repo_id: int, command: RefCommand) -> str | None:
    """The `refs` value git's old value stands for: git knows an annotated tag by its tag
    object, the `refs` row by its commit."""
    if command.old is None or not command.ref.startswith(TAGS):
        return command.old
    tag = session.get(GitTag, (repo_id, command.ref))
    return tag.commit_sha if tag is not None and tag.tag_sha == command.old else command.old


def _move(session: Session, repo: Repo, update: _Update, actor: Actor) -> bool:
    """Compare-and-swap the ref, and keep its annotated tag object (if any) beside it."""
    if update.ref.startswith(TAGS):
        session.execute(delete(GitTag).where(GitTag.repo_id == repo.id, GitTag.name == update.ref))
        if update.tag_sha is not None and update.new is not None:
            session.add(
                GitTag(
                    repo_id=repo.id, name=update.ref, tag_sha=update.tag_sha, commit_sha=update.new
                )
            )
    return move_ref(session, repo, update.ref, update.old, update.new, cause="push", actor=actor)


def _index_rows(session: Session, rows: list[TreeEntry]) -> None:
    columns = [c.key for c in TreeEntry.__table__.columns]
    values = [{key: getattr(row, key) for key in columns} for row in rows]
    insert_ignore(session, TreeEntry, values, ["tree_sha", "name"])
