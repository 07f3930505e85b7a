"""Followers as huggingface_hub reads them: `GET /api/users/{user}/followers`
(`list_user_followers`), `…/following` (`list_user_following`) and
`GET /api/organizations/{org}/followers` (`list_organization_followers`); `POST` and `DELETE
/api/users/{name}/follow` follow and unfollow a user or an organization (the profile pages'
button)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import select

from app.auth.accounts import listed_user
from app.auth.models import Organization, User
from app.db.engine import write_transaction
from app.deps import FactoryDep, PrincipalDep, SessionDep
from app.errors import NotFound
from app.follows import service

router = APIRouter(tags=["follows"])


def _user(session: SessionDep, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name, User.disabled_at.is_(None)))
    if user is None:
        raise NotFound(f"User {name!r} not found")
    return user


@router.get("/api/users/{username}/followers")
def user_followers(username: str, session: SessionDep) -> JSONResponse:
    user = _user(session, username)
    return JSONResponse([listed_user(u) for u in service.followers(session, user.name)])


@router.get("/api/users/{username}/following")
def user_following(username: str, session: SessionDep) -> JSONResponse:
    user = _user(session, username)
    return JSONResponse([listed_user(u) for u in service.following(session, user)])


@router.get("/api/organizations/{name}/followers")
def organization_followers(name: str, session: SessionDep) -> JSONResponse:
    if session.scalar(select(Organization.id).where(Organization.name == name)) is None:
        raise NotFound(f"Organization {name!r} not found")
    return JSONResponse([listed_user(u) for u in service.followers(session, name)])


@router.post("/api/users/{name}/follow")
def follow(name: str, principal: PrincipalDep, factory: FactoryDep) -> JSONResponse:
    with write_transaction(factory) as session:
        service.follow(session, principal, name)
    return JSONResponse({"following": True})


@router.delete("/api/users/{name}/follow")
def unfollow(name: str, principal: PrincipalDep, factory: FactoryDep) -> JSONResponse:
    with write_transaction(factory) as session:
        service.unfollow(session, principal, name)
    return JSONResponse({"following": False})
