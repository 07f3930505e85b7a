"""Quota routes: a namespace's usage for its members, and setting limits for admins.

- `GET /api/quotas/{namespace}`: `{namespace, used, usedLfs, usedGit, limit}` in bytes
  (`limit` null: unlimited), for the namespace's members and admins.
- `PUT /api/admin/quotas/{namespace}` `{"limit": 10000000000 | "10GB" | 0 | null}`: admins
  only; 0 is unlimited, null returns the namespace to `ATRIUM_NAMESPACE_QUOTA`.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.config import parse_size
from app.db.engine import write_transaction
from app.deps import FactoryDep, SessionDep, SettingsDep, UserDep
from app.errors import BadRequest, Forbidden
from app.quotas.service import set_limit, usage

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
