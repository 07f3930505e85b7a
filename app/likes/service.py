"""Liking repos (no HTTP here). A like needs a signed-in user who may read the repo; the
repo's `likes` count is recounted with each change, so it never drifts. Lists of a user's
likes show only the repos the one asking may read: a private repo's name never leaks."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from app.auth.models import User
from app.auth.permissions import Principal
from app.db.upsert import insert_ignore
from app.errors import NotFound, Unauthorized
from app.likes.models import RepoLike
from app.repos.models import Repo


def _signed_in(principal: Principal) -> User:
    if principal.user is None:
        raise Unauthorized("Sign in to like repositories")
    return principal.user


def _recount(session: Session, repo: Repo) -> None:
    repo.likes = (
        session.scalar(
            select(func.count()).select_from(RepoLike).where(RepoLike.repo_id == repo.id)
        )
        or 0
    )


def like(session: Session, principal: Principal, repo: Repo) -> None:
    user = _signed_in(principal)
    insert_ignore(
        session, RepoLike, [{"user_id": user.id, "repo_id": repo.id}], ["user_id", "repo_id"]
    )
    _recount(session, repo)


def unlike(session: Session, principal: Principal, repo: Repo) -> None:
    user = _signed_in(principal)
    session.execute(
        delete(RepoLike).where(RepoLike.user_id == user.id, RepoLike.repo_id == repo.id)
    )
    _recount(session, repo)


def likes(session: Session, principal: Principal, repo: Repo) -> bool:
    """Whether the caller likes the repo (for the like button)."""
    if principal.user is None:
        return False
    found = session.get(RepoLike, (principal.user.id, repo.id))
    return found is not None


def liked_by(session: Session, principal: Principal, name: str) -> Sequence[tuple[Repo, RepoLike]]:
    """The repos `name` likes that the caller may see, newest like first."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"User {name!r} not found")
    query = (
        select(Repo, RepoLike)
        .join(RepoLike, RepoLike.repo_id == Repo.id)
        .where(RepoLike.user_id == user.id)
        .order_by(RepoLike.created_at.desc())
    )
    if not principal.is_admin:
        readable = principal.namespaces(session, write=False)
        query = query.where(or_(Repo.private.is_(False), Repo.namespace.in_(readable)))
    return [(repo, row) for repo, row in session.execute(query).tuples()]


def likers(session: Session, repo: Repo) -> Sequence[User]:
    query = (
        select(User)
        .join(RepoLike, RepoLike.user_id == User.id)
        .where(RepoLike.repo_id == repo.id)
        .order_by(RepoLike.created_at)
    )
    return list(session.scalars(query))
