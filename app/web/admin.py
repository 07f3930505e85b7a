"""Pages for site administrators: the audit log. Anyone else gets the plain 404 page, so the
page does not tell that it exists."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.audit.service import ACTIONS, events
from app.errors import NotFound
from app.web.pages import PageDep, PageRoute

PAGE_SIZE = 100

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@router.get("/admin/audit")
def audit_page(
    page: PageDep,
    action: str | None = None,
    actor: str | None = None,
    repo: str | None = None,
    before: int | None = None,
) -> Response:
    if not page.require_user().is_admin:
        raise NotFound("Page not found")
    rows = events(page.db, limit=PAGE_SIZE, before=before, action=action, actor=actor, target=repo)
    older = rows[-1].id if len(rows) == PAGE_SIZE else None
    filters = {"action": action or "", "actor": actor or "", "repo": repo or ""}
    return page.render(
        "admin_audit.html", events=rows, actions=ACTIONS, filters=filters, older=older
    )
