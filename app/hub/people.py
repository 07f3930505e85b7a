"""The Hub's read API for people (hf-protocol.md §5): a user's and an organization's
overview and an organization's members, in the shapes `HfApi.get_user_overview`,
`get_organization_overview` and `list_organization_members` read. Repo counts are those the
caller can see: a private repo is counted only for someone who may read it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import func, select

from app.auth.accounts import org_members
from app.auth.models import Membership, Organization, User
from app.auth.service import user_orgs
from app.deps import PrincipalDep, SessionDep
from app.errors import NotFound
from app.follows import service as follows
from app.likes.models import RepoLike
from app.repos.search import visible_counts

router = APIRouter(tags=["people"])


def _iso(value: Any) -> str:
    return str(value.isoformat().replace("+00:00", "Z"))


def _counts(counts: dict[str, int]) -> dict[str, int]:
    return {
        "numModels": counts["model"],
        "numDatasets": counts["dataset"],
        "numSpaces": counts["space"],
    }


def _org(session: SessionDep, name: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise NotFound(f"Organization {name!r} not found")
    return org


@router.get("/api/users/{username}/overview")
def user_overview(username: str, session: SessionDep, principal: PrincipalDep) -> dict[str, Any]:
    user = session.scalar(select(User).where(User.name == username))
    if user is None or user.disabled_at is not None:
        raise NotFound(f"User {username!r} not found")
    num_followers, num_following = follows.counts(session, user.name, user)
    likes = session.scalar(
        select(func.count()).select_from(RepoLike).where(RepoLike.user_id == user.id)
    )
    return {
        "_id": str(user.id),
        "user": user.name,
        "fullname": user.fullname or user.name,
        "avatarUrl": "",
        "type": "user",
        "isPro": False,
        "createdAt": _iso(user.created_at),
        **_counts(visible_counts(session, principal, user.name)),
        "numFollowers": num_followers,
        "numFollowing": num_following,
        "isFollowing": follows.is_following(session, principal, user.name),
        "numLikes": int(likes or 0),
        "numPapers": 0,
        "numDiscussions": 0,
        "numUpvotes": 0,
        "orgs": [
            {"name": org.name, "fullname": org.fullname or org.name, "avatarUrl": ""}
            for org, _ in user_orgs(session, user)
        ],
    }


@router.get("/api/organizations/{name}/overview")
def organization_overview(
    name: str, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    org = _org(session, name)
    members = session.scalar(
        select(func.count()).select_from(Membership).where(Membership.org_id == org.id)
    )
    return {
        "_id": str(org.id),
        "name": org.name,
        "fullname": org.fullname or org.name,
        "avatarUrl": "",
        "type": "org",
        "isVerified": False,
        "plan": None,
        "createdAt": _iso(org.created_at),
        "numUsers": int(members or 0),
        **_counts(visible_counts(session, principal, org.name)),
        "numFollowers": follows.counts(session, org.name, None)[0],
        "isFollowing": follows.is_following(session, principal, org.name),
        "numPapers": 0,
    }


@router.get("/api/organizations/{name}/members")
def organization_members(
    name: str, session: SessionDep, principal: PrincipalDep
) -> list[dict[str, Any]]:
    """Every member; their roles only for the org's own members (and site admins)."""
    org = _org(session, name)
    members = org_members(session, org)
    insider = principal.is_admin or any(m.name == principal.name for m in members)
    answer = []
    for member in members:
        row: dict[str, Any] = {"user": member.name, "fullname": member.name, "avatarUrl": ""}
        row["type"] = "user"
        if insider:
            row["role"] = member.role
        answer.append(row)
    return answer
