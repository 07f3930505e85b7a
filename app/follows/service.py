"""Follow and unfollow a user or an organization; list followers and followed accounts.

Anyone signed in may follow any active account but themselves; following twice is following.
Lists show active users only, newest first."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.auth.models import Organization, User
from app.auth.permissions import Principal
from app.db.upsert import insert_ignore
from app.errors import BadRequest, NotFound, Unauthorized
from app.follows.models import Follow


def account_exists(session: Session, name: str) -> bool:
    user = session.scalar(select(User.id).where(User.name == name, User.disabled_at.is_(None)))
    return user is not None or (
        session.scalar(select(Organization.id).where(Organization.name == name)) is not None
    )


def _follower(principal: Principal) -> User:
    if principal.user is None:
        raise Unauthorized("You must be signed in to follow someone")
    return principal.user


def follow(session: Session, principal: Principal, name: str) -> None:
    user = _follower(principal)
    if name == user.name:
        raise BadRequest("You cannot follow yourself")
    if not account_exists(session, name):
        raise NotFound(f"No user or organization called {name!r}")
    insert_ignore(
        session, Follow, [{"follower_id": user.id, "followed": name}], ["follower_id", "followed"]
    )


def unfollow(session: Session, principal: Principal, name: str) -> None:
    user = _follower(principal)
    session.execute(delete(Follow).where(Follow.follower_id == user.id, Follow.followed == name))


def is_following(session: Session, principal: Principal, name: str) -> bool:
    if principal.user is None:
        return False
    found = session.scalar(
        select(Follow.followed).where(
            Follow.follower_id == principal.user.id, Follow.followed == name
        )
    )
    return found is not None


def followers(session: Session, name: str) -> list[User]:
    rows = session.scalars(
        select(User)
        .join(Follow, Follow.follower_id == User.id)
        .where(Follow.followed == name, User.disabled_at.is_(None))
        .order_by(Follow.created_at.desc(), User.name)
    )
    return list(rows)


def following(session: Session, user: User) -> list[User]:
    """The users user follows (organizations are not users: `list_user_following` lists users)."""
    rows = session.scalars(
        select(User)
        .join(Follow, Follow.followed == User.name)
        .where(Follow.follower_id == user.id, User.disabled_at.is_(None))
        .order_by(Follow.created_at.desc(), User.name)
    )
    return list(rows)


def counts(session: Session, name: str, user: User | None) -> tuple[int, int]:
    """(followers of name, accounts user follows)."""
    followed_by = session.scalar(
        select(func.count())
        .select_from(Follow)
        .join(User, User.id == Follow.follower_id)
        .where(Follow.followed == name, User.disabled_at.is_(None))
    )
    follows = 0
    if user is not None:
        follows = (
            session.scalar(
                select(func.count()).select_from(Follow).where(Follow.follower_id == user.id)
            )
            or 0
        )
    return int(followed_by or 0), int(follows)
