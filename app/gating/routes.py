"""Gated repos' API, as huggingface_hub calls it (hf_api.py, "Access requests"), plus one route
of Atrium's own for asking from a script.

- `GET  /api/{plural}/{ns}/{name}/user-access-request/{pending|accepted|rejected}`: the requests,
  with the users' answers to the gate form (paged with a `Link` header, as `paginate` reads).
- `POST …/user-access-request/handle` `{"user", "status", "rejectionReason"?}`: accept, reject
  (revokes an accepted user's access) or cancel (back to pending).
- `POST …/user-access-request/grant` `{"user"}`: access without a request.
- `GET  /api/{plural}/{ns}/{name}/auth-check[/write]`: 200 when the caller may read the content
  (or write the repo); the errors `auth_check` turns into GatedRepoError and the others.
- `POST /api/{plural}/{ns}/{name}/ask-access` `{"fields": {...}}`: the caller's own request, as
  the card page's form sends it; answers the request's status.

Reviewing needs write access to the repo (owner, org write/admin, a write token).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.audit.service import Actor
from app.db.engine import write_transaction
from app.deps import FactoryDep, PrincipalDep, SessionDep, SettingsDep
from app.errors import BadRequest, NotFound
from app.gating import service
from app.gating.form import MAX_FIELDS
from app.gating.models import STATUSES
from app.http import next_link
from app.repos.models import Repo
from app.repos.paths import PLURALS
from app.repos.service import get_repo

router = APIRouter(tags=["gated repos"])
REPO = "/api/{plural}/{namespace}/{name}"


class HandleBody(BaseModel):
    """Names the request by its user, or by its `requestId` (huggingface_hub 1.x and later)."""

    model_config = ConfigDict(extra="ignore")

    user: str | None = Field(default=None, min_length=1, max_length=96)
    requestId: str | None = Field(default=None, min_length=1, max_length=40)
    status: str
    rejectionReason: str | None = Field(default=None, max_length=service.MAX_REASON)


class GrantBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    user: str = Field(min_length=1, max_length=96)


class AskBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fields: dict[str, Any] = Field(default_factory=dict, max_length=MAX_FIELDS)


def _repo_type(plural: str) -> str:
    repo_type = PLURALS.get(plural)
    if repo_type is None:
        raise NotFound(f"Unknown repo type {plural!r}")
    return repo_type


def _reviewed(session: Any, principal: Any, plural: str, namespace: str, name: str) -> Repo:
    repo = get_repo(session, principal, _repo_type(plural), f"{namespace}/{name}")
    service.require_reviewer(session, principal, repo)
    return repo


@router.get(REPO + "/user-access-request/{status}")
def list_requests(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    status: str,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    cursor: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    if status not in STATUSES:
        raise NotFound(f"Unknown access request status {status!r}; use {', '.join(STATUSES)}")
    repo = _reviewed(session, principal, plural, namespace, name)
    rows = service.requests(session, repo, status, after=cursor, limit=service.PAGE_SIZE)
    headers = {}
    if len(rows) == service.PAGE_SIZE:
        headers["Link"] = next_link(request, settings, str(rows[-1].request.id))
    return JSONResponse([service.as_json(row) for row in rows], headers=headers)


@router.post(REPO + "/user-access-request/handle")
def handle_request(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    body: HandleBody,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    with write_transaction(factory) as session:
        repo = _reviewed(session, principal, plural, namespace, name)
        actor = Actor.of(request, principal, "api")
        if (body.user is None) == (body.requestId is None):
            raise BadRequest("Name the request by exactly one of 'user' or 'requestId'")
        row = service.find_request(session, repo, user=body.user, request_id=body.requestId)
        service.decide(session, repo, row, body.status, actor, reason=body.rejectionReason)
    return JSONResponse({})


@router.post(REPO + "/user-access-request/grant")
def grant_access(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    body: GrantBody,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    with write_transaction(factory) as session:
        repo = _reviewed(session, principal, plural, namespace, name)
        service.grant(session, repo, body.user, Actor.of(request, principal, "api"))
    return JSONResponse({"user": body.user, "status": "accepted"})


@router.get(REPO + "/auth-check")
def auth_check(
    plural: str, namespace: str, name: str, session: SessionDep, principal: PrincipalDep
) -> JSONResponse:
    get_repo(session, principal, _repo_type(plural), f"{namespace}/{name}", content=True)
    return JSONResponse({})


@router.get(REPO + "/auth-check/write")
def auth_check_write(
    plural: str, namespace: str, name: str, session: SessionDep, principal: PrincipalDep
) -> JSONResponse:
    get_repo(session, principal, _repo_type(plural), f"{namespace}/{name}", write=True)
    return JSONResponse({})


@router.post(REPO + "/ask-access")
def ask_access(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    body: AskBody,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    with write_transaction(factory) as session:
        repo = get_repo(session, principal, _repo_type(plural), f"{namespace}/{name}")
        row = service.ask(
            session, principal, repo, body.fields, Actor.of(request, principal, "api")
        )
        status = row.status if row is not None else "accepted"
    return JSONResponse({"status": status})
