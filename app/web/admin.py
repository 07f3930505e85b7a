"""Pages for site administrators: the audit log and the users. Anyone else gets the plain
404 page, so the page does not tell that it exists."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.audit.service import ACTIONS, events, record
from app.auth.accounts import SWITCHES, list_users, repo_count
from app.db.engine import write_transaction
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


@router.get("/admin/users")
def users_page(page: PageDep) -> Response:
    if not page.require_user().is_admin:
        raise NotFound("Page not found")
    rows = [(user, repo_count(page.db, user.name)) for user in list_users(page.db)]
    return page.render("admin_users.html", rows=rows)


@router.post("/admin/users/{name}/{action}")
async def user_action(page: PageDep, name: str, action: str) -> Response:
    """Disable, enable, promote or demote an account, as `atrium users` does."""
    await page.form()
    if not page.require_user().is_admin or action not in SWITCHES:
        raise NotFound("Page not found")
    switch = SWITCHES[action]
    with write_transaction(page.request.app.state.sessionmaker) as db:
        switch.change(db, name, switch.on)
        record(db, page.actor(), switch.audit, name)
    return page.redirect("/admin/users")
