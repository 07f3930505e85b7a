"""`GET /api/admin/audit-log`: the audit log for site administrators, newest first."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from app.audit.service import as_json, events, require_admin
from app.deps import SessionDep, SettingsDep, UserDep
from app.errors import BadRequest
from app.http import decode_cursor, encode_cursor, next_link, page_limit

DEFAULT_PAGE = 100
MAX_PAGE = 1000

router = APIRouter(tags=["admin"])


class AuditEntry(BaseModel):
    id: int
    time: str
    actor: str | None
    action: str
    target: str | None
    ip: str | None
    details: dict[str, Any]


@router.get("/api/admin/audit-log", response_model=list[AuditEntry])
def audit_log(
    request: Request,
    principal: UserDep,
    session: SessionDep,
    settings: SettingsDep,
    limit: int | None = None,
    cursor: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    repo: str | None = None,
) -> Response:
    """403 to anyone but an admin; `Link: rel="next"` while older events remain."""
    require_admin(principal)
    size = page_limit(limit, DEFAULT_PAGE, MAX_PAGE)
    before = decode_cursor(cursor)
    if before is not None and (not isinstance(before, int) or isinstance(before, bool)):
        raise BadRequest("invalid pagination cursor")
    rows = events(session, limit=size, before=before, action=action, actor=actor, target=repo)
    headers = {}
    if len(rows) == size:
        headers["Link"] = next_link(request, settings, encode_cursor(rows[-1].id))
    return JSONResponse([as_json(row) for row in rows], headers=headers)
