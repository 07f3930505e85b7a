"""Quota routes: a namespace's usage for its members, and setting limits for admins.

- `GET /api/quotas/{namespace}`: `{namespace, used, usedLfs, usedGit, limit}` in bytes
  (`limit` null: unlimited), for the namespace's members and admins.
- `GET /api/settings/repositories` and `GET /api/organizations/{org}/settings/repositories`:
  every repo of the caller's (or the org's) namespace with its storage, as `hf repos ls`
  (`HfApi.list_user_repos`) reads it; for the namespace's members and admins.
- `PUT /api/admin/quotas/{namespace}` `{"limit": 10000000000 | "10GB" | 0 | null}`: admins
  only; 0 is unlimited, null returns the namespace to `ATRIUM_NAMESPACE_QUOTA`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.config import parse_size
from app.db.engine import write_transaction
from app.deps import FactoryDep, SessionDep, SettingsDep, UserDep
from app.errors import BadRequest, Forbidden
from app.quotas.service import repo_storage, set_limit, usage

router = APIRouter(tags=["quotas"])


class LimitBody(BaseModel):
    limit: int | str | None


@router.get("/api/quotas/{namespace}")
def show_quota(
    namespace: str, session: SessionDep, principal: UserDep, settings: SettingsDep
) -> JSONResponse:
    if not principal.is_admin and namespace not in principal.namespaces(session, write=False):
        raise Forbidden(f"Only members of {namespace!r} and admins may see its storage quota")
    return JSONResponse(usage(session, settings, namespace).as_json())


def _storage_listing(session: SessionDep, principal: UserDep, namespace: str) -> list[Any]:
    if not principal.is_admin and namespace not in principal.namespaces(session, write=False):
        raise Forbidden(f"Only members of {namespace!r} and admins may list its repositories")
    rows = repo_storage(session, namespace)
    total = sum(size for _, size in rows) or 1
    return [
        {
            "id": repo.repo_id,
            "type": repo.type,
            "updatedAt": repo.updated_at.isoformat().replace("+00:00", "Z"),
            "visibility": "private" if repo.private else "public",
            "storage": size,
            "storagePercent": round(100 * size / total, 2),
        }
        for repo, size in rows
    ]


@router.get("/api/settings/repositories")
def my_repositories(session: SessionDep, principal: UserDep) -> list[Any]:
    assert principal.user is not None
    return _storage_listing(session, principal, principal.user.name)


@router.get("/api/organizations/{org}/settings/repositories")
def org_repositories(org: str, session: SessionDep, principal: UserDep) -> list[Any]:
    return _storage_listing(session, principal, org)


@router.put("/api/admin/quotas/{namespace}")
def set_quota(
    namespace: str,
    body: LimitBody,
    factory: FactoryDep,
    principal: UserDep,
    settings: SettingsDep,
) -> JSONResponse:
    if not principal.is_admin or principal.role != "write":
        raise Forbidden("Only admins with a write token may set storage quotas")
    limit = _limit(body.limit)
    with write_transaction(factory) as session:
        set_limit(session, namespace, limit)
        answer = usage(session, settings, namespace).as_json()
    return JSONResponse(answer)


def _limit(value: int | str | None) -> int | None:
    if isinstance(value, str):
        try:
            return parse_size(value)
        except ValueError as exc:
            raise BadRequest(f"limit: {exc}") from None
    if value is not None and value < 0:
        raise BadRequest("limit: must not be negative; 0 is unlimited")
    return value
