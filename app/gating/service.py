"""Gated repos: who has access to a gated repo's content, and the access requests (no HTTP here).

A gated repo (`gated: auto | manual`) keeps its metadata public — its card, its file list,
`model_info` — but its content needs access: `require_access` is called by every reader of
content (downloads, git fetch, LFS and Xet transfers, the dataset viewer, inference, the file
and diff pages) through `app.repos.service.get_repo(..., content=True)`.

Who has access: the repo's owner and the members of its org (any role), site admins, and the
users whose access request was accepted (or who were granted access). A fine-grained token of
a member must name the repo or its namespace, as for a private repo; an accepted user's tokens
read the repo as the user does. With `auto` a request is accepted at once; with `manual` it
waits for someone who may write the repo. Rejecting an accepted user revokes their access on
the next call, since nothing derived from access outlives the check (app.repos.grants).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.auth.models import User
from app.auth.permissions import Principal, require_write
from app.db.base import utcnow
from app.errors import BadRequest, GatedRepo, GatedRepoLogin, NotFound, Unauthorized
from app.gating.form import check_answers, gate_form
from app.gating.models import ACCEPTED, PENDING, REJECTED, STATUSES, AccessRequest
from app.http import iso_z
from app.repos.models import Repo

MODES = ("auto", "manual")
MAX_REASON = 200
PAGE_SIZE = 100


def is_gated(repo: Repo) -> bool:
    return repo.gated in MODES


def set_mode(session: Session, repo: Repo, mode: str | bool, actor: Actor) -> None:
    """`auto`, `manual` or False (not gated). Switching to `auto` accepts the waiting
    requests; ungating keeps every request, so gating again restores who had access."""
    if isinstance(mode, str) and mode.lower() == "false":
        mode = False
    if mode is not False and mode not in MODES:
        raise BadRequest(f"invalid gated value {mode!r}; use 'auto', 'manual' or false")
    new = mode or None
    if new == repo.gated:
        return
    repo.gated = new
    record(session, actor, "repo.gated", repo.repo_id, type=repo.type, gated=mode)
    if new == "auto":
        accept_pending(session, repo, actor)


def is_member(session: Session, principal: Principal, repo: Repo) -> bool:
    """Owners, org members (any role) and site admins: they always read the content."""
    if principal.user is None:
        return False
    if principal.is_admin:
        return True
    key = (repo.type, repo.repo_id)
    return principal.scoped(repo.namespace, key, write=False) and repo.namespace in (
        principal.user_namespaces(session, write=False)
    )


def request_of(session: Session, repo: Repo, user_id: int) -> AccessRequest | None:
    return session.scalar(
        select(AccessRequest).where(
            AccessRequest.repo_id == repo.id, AccessRequest.user_id == user_id
        )
    )


def has_access(session: Session, principal: Principal, repo: Repo) -> bool:
    if not is_gated(repo):
        return True
    if principal.user is None:
        return False
    if is_member(session, principal, repo):
        return True
    row = request_of(session, repo, principal.user.id)
    return row is not None and row.status == ACCEPTED


def require_access(session: Session, principal: Principal, repo: Repo) -> None:
    """Nothing when the caller may read the repo's content; else the Hub's GatedRepo error
    (401 anonymous, 403 signed in) that huggingface_hub raises as GatedRepoError."""
    if has_access(session, principal, repo):
        return
    what = f"Access to {repo.type} {repo.repo_id} is restricted"
    if principal.user is None:
        raise GatedRepoLogin(
            f"{what}. You must have access to it and be authenticated to access it. Please log in."
        )
    row = request_of(session, repo, principal.user.id)
    reason = f"{what} and you are not in the authorized list."
    if row is not None and row.status == PENDING:
        reason += " Your request is awaiting a review from the repo's authors."
    elif row is not None and row.status == REJECTED:
        reason += " Your request was rejected by the repo's authors."
    raise GatedRepo(reason, page=repo.page_path)


@dataclass(frozen=True)
class Standing:
    """What the card page shows a signed-in user of a gated repo."""

    access: bool
    status: str | None  # None (never asked) | pending | accepted | rejected
    reason: str | None = None


def standing(session: Session, principal: Principal, repo: Repo) -> Standing:
    if principal.user is None:
        return Standing(access=not is_gated(repo), status=None)
    if not is_gated(repo) or is_member(session, principal, repo):
        return Standing(access=True, status=None)
    row = request_of(session, repo, principal.user.id)
    if row is None:
        return Standing(access=False, status=None)
    return Standing(access=row.status == ACCEPTED, status=row.status, reason=row.reason)


# --- the user's side -------------------------------------------------------------------


def ask(
    session: Session, principal: Principal, repo: Repo, answers: dict[str, Any], actor: Actor
) -> AccessRequest | None:
    """Record the caller's request with their answers to the gate form: accepted at once on
    an `auto` repo, pending on a `manual` one. None for those who already have access."""
    if principal.user is None:
        raise Unauthorized("Sign in to request access to this repository")
    if not is_gated(repo):
        raise BadRequest(f"{repo.repo_id} is not gated: its files need no access request")
    if is_member(session, principal, repo):
        return None
    fields = check_answers(gate_form(repo.card_data, repo.type), answers)
    row = request_of(session, repo, principal.user.id)
    if row is not None and row.status != PENDING:
        if row.status == REJECTED:
            raise BadRequest("Your access request was rejected; the repo's authors may reopen it")
        return row
    status = ACCEPTED if repo.gated == "auto" else PENDING
    if row is None:
        row = AccessRequest(repo_id=repo.id, user_id=principal.user.id)
        session.add(row)
    row.status, row.fields, row.updated_at = status, fields or None, utcnow()
    record(session, actor, "gate.request", repo.repo_id, type=repo.type, status=status)
    session.flush()
    return row


# --- the reviewer's side ---------------------------------------------------------------


def require_reviewer(session: Session, principal: Principal, repo: Repo) -> None:
    """Access requests are read and decided by those who may write the repo (the Hub: write
    or admin in its org, with a write token); BadRequest when the repo is not gated."""
    require_write(session, principal, repo.namespace, (repo.type, repo.repo_id))
    if not is_gated(repo):
        raise BadRequest(f"{repo.repo_id} is not a gated repo")


@dataclass(frozen=True)
class Listed:
    request: AccessRequest
    user: User


def requests(
    session: Session, repo: Repo, status: str, *, after: int = 0, limit: int = PAGE_SIZE
) -> Sequence[Listed]:
    """One page of the repo's requests with that status, oldest first, after id `after`."""
    if status not in STATUSES:
        raise NotFound(f"Unknown access request status {status!r}; use {', '.join(STATUSES)}")
    rows = session.execute(
        select(AccessRequest, User)
        .join(User, User.id == AccessRequest.user_id)
        .where(
            AccessRequest.repo_id == repo.id,
            AccessRequest.status == status,
            AccessRequest.id > after,
        )
        .order_by(AccessRequest.id)
        .limit(limit)
    ).tuples()
    return [Listed(request, user) for request, user in rows]


def _user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name)) if name else None
    if user is None:
        raise NotFound(f"User {name!r} not found")
    return user


def find_request(
    session: Session, repo: Repo, *, user: str | None = None, request_id: str | None = None
) -> Listed:
    """The repo's request of that user, or with that id (as listings show it)."""
    if user is not None:
        found = _user(session, user)
        row = request_of(session, repo, found.id)
        if row is None:
            raise NotFound(f"{user} has not requested access to {repo.repo_id}")
        return Listed(row, found)
    number = int(request_id) if request_id and request_id.isdigit() else None
    row = session.get(AccessRequest, number) if number is not None else None
    if row is None or row.repo_id != repo.id:
        raise NotFound(f"No access request {request_id!r} for {repo.repo_id}")
    owner = session.get(User, row.user_id)
    assert owner is not None  # the row goes with its user
    return Listed(row, owner)


def decide(
    session: Session,
    repo: Repo,
    listed: Listed,
    status: str,
    actor: Actor,
    *,
    reason: str | None = None,
) -> AccessRequest:
    """Move a request to pending (cancel), accepted or rejected (revokes access)."""
    if status not in STATUSES:
        raise BadRequest(f"status must be one of {', '.join(STATUSES)}")
    if reason is not None and status != REJECTED:
        raise BadRequest("A rejection reason goes only with status 'rejected'")
    if reason is not None and len(reason) > MAX_REASON:
        raise BadRequest(f"The rejection reason is longer than {MAX_REASON} characters")
    row, name = listed.request, listed.user.name
    if row.status == status:
        raise NotFound(f"The access request of {name} is already {status}")
    row.status, row.reason, row.updated_at = status, reason, utcnow()
    row.decided_by = actor.name
    record(session, actor, "gate.decide", repo.repo_id, type=repo.type, user=name, status=status)
    return row


def grant(session: Session, repo: Repo, name: str, actor: Actor) -> AccessRequest:
    """Give a user access without a request of theirs."""
    user = _user(session, name)
    row = request_of(session, repo, user.id)
    if row is not None and row.status == ACCEPTED:
        raise BadRequest(f"{name} already has access to {repo.repo_id}")
    if row is None:
        row = AccessRequest(repo_id=repo.id, user_id=user.id, fields=None)
        session.add(row)
    row.status, row.reason, row.updated_at, row.decided_by = ACCEPTED, None, utcnow(), actor.name
    record(session, actor, "gate.grant", repo.repo_id, type=repo.type, user=name)
    session.flush()
    return row


def accept_pending(session: Session, repo: Repo, actor: Actor) -> int:
    """A repo switched to `auto` accepts the requests that were waiting."""
    rows = session.scalars(
        select(AccessRequest).where(
            AccessRequest.repo_id == repo.id, AccessRequest.status == PENDING
        )
    ).all()
    for row in rows:
        row.status, row.updated_at, row.decided_by = ACCEPTED, utcnow(), None
    if rows:
        record(session, actor, "gate.decide", repo.repo_id, type=repo.type, accepted=len(rows))
    return len(rows)


def as_json(listed: Listed, *, with_email: bool = True) -> dict[str, Any]:
    row, user = listed.request, listed.user
    out: dict[str, Any] = {
        "requestId": str(row.id),
        "user": {
            "user": user.name,
            "fullname": user.fullname or user.name,
            "email": user.email if with_email else None,
            "type": "user",
        },
        "status": row.status,
        "timestamp": iso_z(row.created_at),
        "fields": row.fields,
    }
    if row.reason:
        out["rejectionReason"] = row.reason
    return out
