"""The one place where refs move (ARCHITECTURE.md §5).

Every write path — API commits, git pushes, super-squash, branch and tag operations, parquet
exports, repo creation and deletion — moves refs through `move_ref`, inside the transaction
that makes the change and after every object the new commit reaches is durable. It
compare-and-swaps the ref and, in the same transaction, records the domain event
`repo.ref_moved` (repo, ref, old, new, actor, cause) and the audit line of the actor. Follow-up
work (pickle scans, and later webhooks or conversions) consumes the events afterwards from their
durable table (`app.repos.events`), so no write path can forget one.

Event ids follow commit order, which consumers rely on to read the table as a log: the events
of a transaction are inserted by a `before_commit` hook, its very last statements, under a
transaction-level advisory lock on PostgreSQL (SQLite has one writer at a time anyway). The
lock is taken when every row lock of the transaction is already held, so it cannot deadlock.
A transaction that rolls back (a lost compare-and-swap, an error) drops its events with it.
"""

from __future__ import annotations

import logging
from typing import Literal

from sqlalchemy import delete, event, select, text, update
from sqlalchemy.orm import Session, SessionTransaction

from app.audit.service import Actor, record_push
from app.db.base import utcnow
from app.repos.models import Ref, Repo, RepoEvent

log = logging.getLogger("atrium.events")

REF_MOVED = "repo.ref_moved"
Cause = Literal[
    "commit",  # an API commit (upload, delete, the web's edits)
    "push",  # git push
    "squash",  # super-squash
    "branch",  # a branch created or deleted through the API
    "tag",  # a tag created or deleted through the API
    "pull-request",  # a pull request's ref opened
    "export",  # the parquet export of a dataset (refs/convert/parquet)
    "merge",  # a pull request merged
    "rewrite",  # history rewritten without some large files (permanently_delete_lfs_files)
    "repo.create",  # the first commit of a new repo
    "repo.duplicate",  # the refs of a copy of another repo
    "repo.delete",  # the repo and its refs removed
]
EVENT_ORDER_LOCK = 0x41545249554D  # "ATRIUM": the advisory lock that orders event ids on PostgreSQL
OWN_AUDIT_ACTION = (
    "repo.create",
    "repo.duplicate",
    "repo.delete",
)  # audited as such, not as a push as well
PENDING = "atrium_pending_events"  # Session.info keys
DELIVERY_DUE = "atrium_delivery_due"
DELIVER_NOW = "atrium_deliver_now"  # committed: deliver once the connection is given back
NOTIFY = "atrium_notify_events"  # set by `app.repos.events.EventBus.attach` on the sessionmaker


def move_ref(
    session: Session,
    repo: Repo,
    ref_name: str,
    old: str | None,
    new: str | None,
    *,
    cause: Cause,
    actor: Actor | None = None,
) -> bool:
    """Compare-and-swap `ref_name` from old to new (old None creates it, new None deletes it)
    and record the event; False, with nothing recorded, when the ref is not at old."""
    if not _swap(session, repo, ref_name, old, new):
        return False
    # The event is written when the transaction commits (`_write_pending`).
    pending: list[RepoEvent] = session.info.setdefault(PENDING, [])
    pending.append(
        RepoEvent(
            kind=REF_MOVED,
            repo_uid=repo.uid,
            repo_type=repo.type,
            repo=repo.repo_id,
            ref=ref_name,
            old=old,
            new=new,
            actor=actor.name if actor is not None else None,
            cause=cause,
        )
    )
    if actor is not None and cause not in OWN_AUDIT_ACTION:
        record_push(session, actor, repo, ref_name, old, new)
    return True


def delete_all_refs(session: Session, repo: Repo, *, actor: Actor | None) -> None:
    """Remove every ref of a repo that is being deleted, one event per ref."""
    refs = session.execute(select(Ref.name, Ref.commit_sha).where(Ref.repo_id == repo.id))
    for name, sha in refs.tuples().all():
        move_ref(session, repo, name, sha, None, cause="repo.delete", actor=actor)


def _swap(session: Session, repo: Repo, ref_name: str, old: str | None, new: str | None) -> bool:
    if old is None:
        if new is None:
            return False
        exists = session.scalar(select(Ref.id).where(Ref.repo_id == repo.id, Ref.name == ref_name))
        if exists is not None:
            return False
        session.add(Ref(repo_id=repo.id, name=ref_name, commit_sha=new))
        session.flush()
        return True
    where = (Ref.repo_id == repo.id, Ref.name == ref_name, Ref.commit_sha == old)
    if new is None:
        result = session.execute(delete(Ref).where(*where))
    else:
        result = session.execute(
            update(Ref).where(*where).values(commit_sha=new, updated_at=utcnow())
        )
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: the events wait for the outer transaction's commit
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_ORDER_LOCK})
    session.add_all(pending)
    session.info[DELIVERY_DUE] = True


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    if session.info.pop(DELIVERY_DUE, False):
        session.info[DELIVER_NOW] = True


@event.listens_for(Session, "after_transaction_end")
def _deliver(session: Session, transaction: SessionTransaction) -> None:
    """Once the outer transaction is over: drop what a rollback did not write, or hand the
    new events to this app's consumers at once, in the committing thread (the answer to a
    commit or a push then follows its scans). This runs after the session gave its
    connection back: delivery takes one of its own, and a committer must never hold two
    (a full pool would then wait on itself). A delivery that fails is left to the poller:
    the commit is durable and is answered as such."""
    if transaction.parent is not None:
        return
    session.info.pop(PENDING, None)
    session.info.pop(DELIVERY_DUE, None)
    if not session.info.pop(DELIVER_NOW, False):
        return
    notify = session.info.get(NOTIFY)
    if notify is None:
        return
    try:
        notify()
    except Exception:
        log.warning(
            "delivering repo events after a commit failed; the poller retries", exc_info=True
        )
