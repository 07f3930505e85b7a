"""`/settings/webhooks`: a user's webhooks — what each watches, where it sends, whether it is
disabled (and why), its last deliveries — with forms to add, enable, disable and delete them.
The same rules as the API (app.webhooks.service), behind CSRF protection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from app.db.engine import write_transaction
from app.errors import AtriumError, BadRequest
from app.web.pages import Page, PageDep, PageRoute
from app.webhooks import service

router = APIRouter(route_class=PageRoute, include_in_schema=False)
URL = "/settings/webhooks"


def _page(page: Page, **context: Any) -> Response:
    principal = page.require_user()
    assert principal.user is not None
    hooks = [
        (h, service.deliveries(page.db, h, limit=10))
        for h in service.owned(page.db, principal.user)
    ]
    return page.render(
        "webhooks.html", hooks=hooks, types=service.WATCH_TYPES, domains=service.DOMAINS, **context
    )


@router.get(URL)
def webhooks_page(page: PageDep) -> Response:
    return _page(page)


def _watched(text: str) -> list[dict[str, str]]:
    """`model:alice/bert`, `user:alice`, one per line."""
    items = []
    for line in text.splitlines():
        kind, _, name = line.strip().partition(":")
        if line.strip():
            if not name:
                raise BadRequest(
                    f"Write each watched item as TYPE:NAME, e.g. model:alice/bert ({line!r})"
                )
            items.append({"type": kind.strip(), "name": name.strip()})
    return items


@router.post(URL)
async def add_webhook(page: PageDep) -> Response:
    form = await page.form()
    principal = page.require_user()
    settings = page.request.app.state.settings
    try:
        body = {
            "url": form.get("url", ""),
            "secret": form.get("secret", "") or None,
            "watched": _watched(form.get("watched", "")),
            "domains": [d for d in service.DOMAINS if form.get(f"domain-{d}")] or None,
        }
        with write_transaction(page.request.app.state.sessionmaker) as db:
            user = service.require_owner(principal, write=True)
            service.create(db, user, body, settings)
    except AtriumError as exc:
        page.db.rollback()
        return _page(page, error=exc.message, draft=form)
    return page.redirect(URL)


@router.post(URL + "/{uid}/{action}")
async def change_webhook(page: PageDep, uid: str, action: str) -> Response:
    await page.form()
    principal = page.require_user()
    if action not in ("enable", "disable", "delete"):
        raise BadRequest("Choose enable, disable or delete")
    with write_transaction(page.request.app.state.sessionmaker) as db:
        user = service.require_owner(principal, write=True)
        hook = service.find(db, user, uid)
        if action == "delete":
            db.delete(hook)
        else:
            service.set_enabled(hook, action == "enable")
    return page.redirect(URL)
