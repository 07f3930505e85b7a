"""A change to a repo's files, committed on a branch or proposed as a pull request: what the
Hub's commit route (`create_commit(create_pr=…)`) and the pages' editor both do.

Committing on a branch needs push rights on it; proposing needs only the right to take part
in discussions (`app.discussions.service`): the pull request is opened first, the commit lands
on its `refs/pr/N`, and a refused commit leaves no empty pull request behind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dulwich.objects import Blob
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import Actor
from app.auth.permissions import Principal
from app.blobs import BlobStore
from app.config import Settings
from app.db.engine import write_transaction
from app.discussions import service as discussions
from app.discussions.models import OPEN
from app.quotas.service import Upload, check_upload
from app.repos import manage
from app.repos.commits import AddFile, Author, Operation, create_commit
from app.repos.gitobjects import parse_lfs_pointer
from app.repos.models import Repo
from app.repos.service import branch_ref_name


@dataclass(frozen=True)
class Change:
    operations: Sequence[Operation]
    title: str
    description: str = ""
    parent_commit: str | None = None


@dataclass(frozen=True)
class Contribution:
    sha: str
    pull_request: int | None  # the number of the pull request it opened, if any


def inline_files(operations: Sequence[Operation]) -> dict[str, int]:
    """git blob sha1 -> size of the regular files a commit carries (LFS pointers sent inline
    name objects that were counted when they were uploaded)."""
    return {
        Blob.from_string(op.content).id.decode(): len(op.content)
        for op in operations
        if isinstance(op, AddFile) and parse_lfs_pointer(op.content) is None
    }


def contribute(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    settings: Settings,
    principal: Principal,
    repo_id: int,
    revision: str,
    change: Change,
    *,
    create_pr: bool,
    actor: Actor,
) -> Contribution:
    """Commit the change on branch `revision`, or open a pull request against it that
    holds the change. Raises the Hub's errors: 403 without the right, 413 past the quota, 412
    for a stale parent, 4xx for bad operations."""
    with factory() as session:
        repo = session.get(Repo, repo_id)
        assert repo is not None
        if create_pr:
            discussions.require_participant(session, principal, repo)
        else:
            discussions.require_push(session, principal, repo, branch_ref_name(revision))
        check_upload(session, settings, repo.namespace, Upload(git=inline_files(change.operations)))
    assert principal.user is not None
    number = None
    if create_pr:
        with write_transaction(factory) as session:
            repo = session.get(Repo, repo_id)
            assert repo is not None
            thread = discussions.open_thread(
                session,
                principal,
                repo,
                title=change.title or "Update files",
                description=change.description or None,
                pull_request=True,
                actor=actor,
                target=revision,
                status=OPEN,
            )
            number = thread.num
    ref_name = revision if number is None else f"{manage.PULLS}{number}"
    try:
        result = create_commit(
            factory,
            blobs,
            repo_id,
            ref_name,
            change.operations,
            author=Author.of(principal.user),
            title=change.title,
            description=change.description,
            parent_commit=change.parent_commit,
            after_commit=manage.update_card,
            actor=actor,
        )
    except Exception:
        if number is not None:
            with write_transaction(factory) as cleanup:
                fresh = cleanup.get(Repo, repo_id)
                if fresh is not None:
                    discussions.discard(cleanup, fresh, number, actor)
        raise
    return Contribution(result.sha, number)
