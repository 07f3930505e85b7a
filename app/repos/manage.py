"""Repo lifecycle: create (with the initial `.gitattributes` commit), duplicate, delete, move,
settings."""

from __future__ import annotations

import json
from dataclasses import dataclass

from dulwich.objects import Blob
from sqlalchemy import delete, insert, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import Actor, record
from app.auth.permissions import Principal, require_write
from app.blobs import BlobStore
from app.cards.metadata import card_metadata
from app.config import Settings
from app.datasets.tags import derived_tags, with_derived_tags
from app.db.base import utcnow
from app.db.engine import write_transaction
from app.errors import BadRequest, Conflict, PreconditionFailed, RevisionNotFound
from app.quotas.models import RepoGitBlob
from app.quotas.service import Upload, check_upload
from app.repos.commits import (
    GITATTRIBUTES,
    Author,
    CommitBuilder,
    CommitPlan,
    index_commit,
    make_commit_object,
)
from app.repos.gitobjects import store_objects
from app.repos.models import LfsObject, Ref, Repo, RepoCommit, RepoLfsObject, RepoRedirect
from app.repos.paths import validate_repo_name, validate_repo_type
from app.repos.refs import Cause, delete_all_refs, move_ref
from app.repos.service import (
    DEFAULT_BRANCH,
    HEADS,
    TAGS,
    find_repo,
    get_commit,
    get_ref,
)

PULLS = "refs/pr/"


SPACE_SDKS = ("gradio", "docker", "static", "streamlit")


def space_readme(name: str, sdk: str) -> bytes:
    """The card the Hub gives a new Space: its configuration as front matter."""
    title = name.replace("-", " ").replace("_", " ").strip() or name
    return (
        f"---\ntitle: {json.dumps(title)}\nemoji: 🚀\ncolorFrom: indigo\ncolorTo: pink\n"
        f"sdk: {sdk}\npinned: false\n---\n\nEdit the front matter above to configure this Space.\n"
    ).encode()


@dataclass(frozen=True)
class CreatedRepo:
    repo: Repo
    created: bool


def create_repo(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    principal: Principal,
    repo_type: str | None,
    namespace: str,
    name: str,
    *,
    private: bool = False,
    sdk: str | None = None,
    actor: Actor | None = None,
) -> Repo:
    """Create a repo whose `main` holds one commit with HF's default `.gitattributes` (and,
    for a Space given its SDK, the Hub's README.md with the Space's configuration);
    Conflict (409) when it exists. The repo row, ref, commit and the audit event of `actor`
    appear in one transaction."""
    repo_type = validate_repo_type(repo_type)
    validate_repo_name(name)
    if sdk is not None and repo_type == "space" and sdk not in SPACE_SDKS:
        raise BadRequest(f"Invalid sdk {sdk!r}; use one of {', '.join(SPACE_SDKS)}")
    assert principal.user is not None
    with factory() as session:
        require_write(session, principal, namespace, create=True)
        if find_repo(session, repo_type, f"{namespace}/{name}") is not None:
            raise Conflict(f"You already created this {repo_type} repo: {namespace}/{name}")
    builder = CommitBuilder(session=None, base_tree=None)
    blob = Blob.from_string(GITATTRIBUTES)
    builder.add(".gitattributes", blob, size=len(GITATTRIBUTES), lfs=None)
    if sdk is not None and repo_type == "space":
        readme = space_readme(name, sdk)
        builder.add("README.md", Blob.from_string(readme), size=len(readme), lfs=None)
    plan = builder.build()
    plan.readme = readme if sdk is not None and repo_type == "space" else None
    commit = make_commit_object(plan.tree_sha, [], Author.of(principal.user), "initial commit", "")
    store_objects(blobs, [*plan.objects, commit])
    try:
        with write_transaction(factory) as session:
            repo = Repo(
                type=repo_type,
                namespace=namespace,
                name=name,
                private=private,
                settings={},
                tags=[],
                created_by=principal.user.id,
            )
            release_name(session, repo_type, namespace, name)
            session.add(repo)
            session.flush()
            main = HEADS + DEFAULT_BRANCH
            move_ref(
                session, repo, main, None, commit.id.decode(), cause="repo.create", actor=actor
            )
            index_commit(session, repo, commit, plan.rows)
            if plan.readme is not None:
                update_card(session, repo, main, commit.id.decode(), plan)
            if actor is not None:
                record(session, actor, "repo.create", repo.repo_id, type=repo_type, private=private)
    except IntegrityError:
        raise Conflict(f"You already created this {repo_type} repo: {namespace}/{name}") from None
    return repo


def duplicate_repo(
    factory: sessionmaker[Session],
    settings: Settings,
    principal: Principal,
    source_id: int,
    namespace: str,
    name: str,
    *,
    private: bool | None = None,
    actor: Actor | None = None,
) -> Repo:
    """A new repo `namespace/name` with the source's whole history: its branches and tags at
    the same commits, which it may read from then on, and its large files. Nothing is copied:
    objects are shared by hash, the new repo is only given the right to them. Conflict (409)
    when the name is taken; the namespace's quota counts what it does not hold yet. Pull
    requests and discussions stay with the source, as on the Hub."""
    validate_repo_name(name)
    with write_transaction(factory) as session:
        source = session.get(Repo, source_id)
        assert source is not None
        require_write(session, principal, namespace, create=True)
        if find_repo(session, source.type, f"{namespace}/{name}") is not None:
            raise Conflict(f"A {source.type} repository called {namespace}/{name} already exists")
        lfs = session.execute(
            select(LfsObject.oid, LfsObject.size)
            .join(RepoLfsObject, RepoLfsObject.oid == LfsObject.oid)
            .where(RepoLfsObject.repo_id == source.id)
        )
        git = session.execute(
            select(RepoGitBlob.oid, RepoGitBlob.size).where(RepoGitBlob.repo_id == source.id)
        )
        upload = Upload(lfs=dict(lfs.tuples().all()), git=dict(git.tuples().all()))
        check_upload(session, settings, namespace, upload)
        assert principal.user is not None
        repo = Repo(
            type=source.type,
            namespace=namespace,
            name=name,
            private=source.private if private is None else private,
            settings={},
            tags=list(source.tags),
            card_data=source.card_data,
            pipeline_tag=source.pipeline_tag,
            library_name=source.library_name,
            derived=source.derived,
            used_storage=source.used_storage,
            created_by=principal.user.id,
        )
        release_name(session, repo.type, namespace, name)
        session.add(repo)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(
                f"A {repo.type} repository called {repo.repo_id} already exists"
            ) from None
        links = (
            (RepoCommit, [RepoCommit.commit_sha]),
            (RepoLfsObject, [RepoLfsObject.oid, RepoLfsObject.created_at]),
            (RepoGitBlob, [RepoGitBlob.oid, RepoGitBlob.size]),
        )
        for table, columns in links:
            rows = select(literal(repo.id), *columns).where(table.repo_id == source.id)
            names = ["repo_id", *(column.key for column in columns)]
            session.execute(insert(table).from_select(names, rows))
        refs = session.execute(
            select(Ref.name, Ref.commit_sha)
            .where(Ref.repo_id == source.id, Ref.name.startswith(HEADS) | Ref.name.startswith(TAGS))
            .order_by(Ref.name)
        )
        for ref_name, sha in refs.tuples().all():
            move_ref(session, repo, ref_name, None, sha, cause="repo.duplicate", actor=actor)
        if actor is not None:
            record(
                session,
                actor,
                "repo.duplicate",
                repo.repo_id,
                type=repo.type,
                source=source.repo_id,
                private=repo.private,
            )
    return repo


def delete_repo(session: Session, repo: Repo, actor: Actor | None) -> None:
    """Removes the repo and its refs (an event each); its objects stay for `atrium gc`."""
    delete_all_refs(session, repo, actor=actor)
    session.delete(repo)


def move_repo(session: Session, principal: Principal, repo: Repo, to_repo_id: str) -> None:
    namespace, _, name = to_repo_id.partition("/")
    if not namespace or not name or "/" in name:
        raise BadRequest(f"invalid repo id {to_repo_id!r}; use namespace/name")
    validate_repo_name(name)
    require_write(session, principal, namespace)
    if find_repo(session, repo.type, to_repo_id) is not None:
        raise Conflict(f"A {repo.type} repository called {to_repo_id} already exists")
    old_namespace, old_name = repo.namespace, repo.name
    repo.namespace, repo.name = namespace, name
    repo.updated_at = utcnow()
    # The old name redirects here until a repo takes it; the new one redirects nowhere.
    release_name(session, repo.type, namespace, name)
    release_name(session, repo.type, old_namespace, old_name)
    session.add(
        RepoRedirect(type=repo.type, namespace=old_namespace, name=old_name, repo_id=repo.id)
    )


def release_name(session: Session, repo_type: str, namespace: str, name: str) -> None:
    """A name taken by a repo (created or moved there) no longer redirects elsewhere."""
    session.execute(
        delete(RepoRedirect).where(
            RepoRedirect.type == repo_type,
            RepoRedirect.namespace == namespace,
            RepoRedirect.name == name,
        )
    )


def update_card(session: Session, repo: Repo, ref_name: str, sha: str, plan: CommitPlan) -> None:
    """After-commit hook: refresh card metadata and lastModified when the default branch moves."""
    if ref_name != HEADS + DEFAULT_BRANCH:
        return
    repo.updated_at = utcnow()
    if plan.readme is not None or _readme_removed(session, plan):
        text = (plan.readme or b"").decode("utf-8", "replace")
        meta = card_metadata(text, repo.type)
        repo.card_data = meta.data or None
        repo.tags = meta.tags
        repo.pipeline_tag = meta.pipeline_tag
        repo.library_name = meta.library_name
    if repo.type == "dataset":
        derived = derived_tags(session, plan.tree_sha, repo.card_data or {})
        repo.tags = with_derived_tags(repo.tags or [], derived)


def _readme_removed(session: Session, plan: CommitPlan) -> bool:
    from app.repos.models import TreeEntry

    root_rows = [row for row in plan.rows if row.tree_sha == plan.tree_sha]
    if not root_rows and plan.tree_sha:
        root_rows = list(
            session.scalars(select(TreeEntry).where(TreeEntry.tree_sha == plan.tree_sha))
        )
    return all(row.name != "README.md" for row in root_rows)


# --- settings and refs (hf-protocol.md §3) ----------------------------------------------


def update_settings(repo: Repo, *, private: bool | None = None) -> None:
    """Visibility (the gated mode is app.gating's: it also decides waiting requests)."""
    if private is not None:
        repo.private = private
    repo.updated_at = utcnow()


def create_ref(session: Session, repo: Repo, ref_name: str, sha: str, actor: Actor | None) -> None:
    """A new branch or tag at sha; Conflict (409, which `exist_ok` tolerates) if it exists."""
    if not move_ref(session, repo, ref_name, None, sha, cause=_cause(ref_name), actor=actor):
        raise Conflict(f"Reference {ref_name} already exists")


def delete_ref(session: Session, repo: Repo, ref_name: str, actor: Actor | None) -> None:
    """Remove a branch or tag; the default branch stays (every repo needs a `main`)."""
    if ref_name == HEADS + DEFAULT_BRANCH:
        raise BadRequest(
            f"Cannot delete {ref_name}: the default branch stays (every repo needs it)"
        )
    ref = get_ref(session, repo, ref_name)
    cause = _cause(ref_name)
    if ref is None or not move_ref(
        session, repo, ref_name, ref.commit_sha, None, cause=cause, actor=actor
    ):
        raise RevisionNotFound(f"Invalid rev id: {ref_name.removeprefix(HEADS)}")


def _cause(ref_name: str) -> Cause:
    if ref_name.startswith(TAGS):
        return "tag"
    return "pull-request" if ref_name.startswith(PULLS) else "branch"


def squash_branch(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    repo_id: int,
    branch: str,
    author: Author,
    message: str,
    actor: Actor | None = None,
) -> str:
    """Replace a branch's history by one root commit of its current tree (super-squash);
    412 when the branch moves meanwhile, like any other commit with a pinned parent. A full
    ref name (`refs/pr/1`, `refs/convert/parquet`) squashes that ref, as the Hub allows."""
    ref_name = branch if branch.startswith("refs/") else HEADS + branch
    with factory() as session:
        repo = session.get(Repo, repo_id)
        head = get_ref(session, repo, ref_name) if repo else None
        if repo is None or head is None:
            raise RevisionNotFound(f"Invalid rev id: {branch}")
        tree_sha = get_commit(session, head.commit_sha).tree_sha
        old = head.commit_sha
    commit = make_commit_object(tree_sha, [], author, message, "")
    store_objects(blobs, [commit])
    with write_transaction(factory) as session:
        repo = session.get(Repo, repo_id)
        assert repo is not None
        new = commit.id.decode()
        if not move_ref(session, repo, ref_name, old, new, cause="squash", actor=actor):
            raise PreconditionFailed()
        index_commit(session, repo, commit, [])
        repo.updated_at = utcnow()
    return commit.id.decode()
