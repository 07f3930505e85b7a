"""Likes, as huggingface_hub calls them: `POST`/`DELETE /api/{plural}/{ns}/{name}/like` (like,
`unlike`), `GET /api/users/{user}/likes` (`list_liked_repos`), `GET …/likers`
(`list_repo_likers`). The repo is checked as for reading it: a private one is 404."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.auth.accounts import listed_user
from app.db.engine import write_transaction
from app.deps import FactoryDep, PrincipalDep, SessionDep
from app.errors import NotFound
from app.http import iso_z
from app.likes import service
from app.repos.paths import PLURALS
from app.repos.service import get_repo

router = APIRouter(tags=["likes"])
REPO = "/api/{plural}/{namespace}/{name}"


def _type(plural: str) -> str:
    repo_type = PLURALS.get(plural)
    if repo_type is None:
        raise NotFound(f"Unknown repo type {plural!r}")
    return repo_type


@router.post(REPO + "/like")
def like(
    plural: str, namespace: str, name: str, principal: PrincipalDep, factory: FactoryDep
) -> JSONResponse:
    with write_transaction(factory) as session:
        repo = get_repo(session, principal, _type(plural), f"{namespace}/{name}")
        service.like(session, principal, repo)
        count = repo.likes
    return JSONResponse({"likes": count})


@router.delete(REPO + "/like")
def unlike(
    plural: str, namespace: str, name: str, principal: PrincipalDep, factory: FactoryDep
) -> JSONResponse:
    with write_transaction(factory) as session:
        repo = get_repo(session, principal, _type(plural), f"{namespace}/{name}")
        service.unlike(session, principal, repo)
        count = repo.likes
    return JSONResponse({"likes": count})


@router.get(REPO + "/likers")
def likers(
    plural: str, namespace: str, name: str, session: SessionDep, principal: PrincipalDep
) -> JSONResponse:
    repo = get_repo(session, principal, _type(plural), f"{namespace}/{name}")
    return JSONResponse([listed_user(u) for u in service.likers(session, repo)])


@router.get("/api/users/{user}/likes")
def liked_repos(user: str, session: SessionDep, principal: PrincipalDep) -> JSONResponse:
    rows = service.liked_by(session, principal, user)
    return JSONResponse(
        [
            {
                "createdAt": iso_z(row.created_at),
                "repo": {"name": repo.repo_id, "type": repo.type},
            }
            for repo, row in rows
        ]
    )
