"""A gated repo in the browser: the visitor asks for access on the card, and whoever may write
the repo sets the gate and decides the requests on its settings page. Every form is
CSRF-checked; the decisions are app.gating's, as through the API."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.db.engine import write_transaction
from app.errors import BadRequest
from app.gating import service as gating
from app.repos.models import Repo
from app.repos.service import get_repo
from app.web.pages import PageDep, PageRoute
from app.web.repo_pages import page_route, target_of, writable
from app.web.urls import repo_url, settings_url

router = APIRouter(route_class=PageRoute, include_in_schema=False)
DECISIONS = {"accept": "accepted", "reject": "rejected", "cancel": "pending"}


@page_route(router, "/ask-access", ("POST",))
async def ask_access(page: PageDep) -> Response:
    form = await page.form()
    page.require_user()
    target = target_of(page.request)
    with write_transaction(page.request.app.state.sessionmaker) as db:
        repo = get_repo(db, page.principal, target.repo_type, target.repo_id)
        gating.ask(db, page.principal, repo, form, page.actor())
        url = repo_url(repo)
    return page.redirect(f"{url}#gate")


def _fresh(db: Session, repo: Repo) -> Repo:
    fresh = db.get(Repo, repo.id)
    if fresh is None:
        raise BadRequest("This repository was deleted meanwhile")
    return fresh


@page_route(router, "/settings/gated", ("POST",))
async def set_gated(page: PageDep) -> Response:
    form = await page.form()
    repo = writable(page)
    mode = form.get("gated", "")
    with write_transaction(page.request.app.state.sessionmaker) as db:
        gating.set_mode(db, _fresh(db, repo), mode if mode in gating.MODES else False, page.actor())
    return page.redirect(f"{settings_url(repo)}#access")


@page_route(router, "/settings/access-requests", ("POST",))
async def decide(page: PageDep) -> Response:
    form = await page.form()
    repo = writable(page)
    status = DECISIONS.get(form.get("action", ""))
    if status is None:
        raise BadRequest("Choose accept, reject or cancel")
    reason = (form.get("reason", "").strip() or None) if status == "rejected" else None
    with write_transaction(page.request.app.state.sessionmaker) as db:
        fresh = _fresh(db, repo)
        gating.require_reviewer(db, page.principal, fresh)
        listed = gating.find_request(db, fresh, user=form.get("user", ""))
        gating.decide(db, fresh, listed, status, page.actor(), reason=reason)
    return page.redirect(f"{settings_url(repo)}#access")


@page_route(router, "/settings/access-grant", ("POST",))
async def grant(page: PageDep) -> Response:
    form = await page.form()
    repo = writable(page)
    with write_transaction(page.request.app.state.sessionmaker) as db:
        fresh = _fresh(db, repo)
        gating.require_reviewer(db, page.principal, fresh)
        gating.grant(db, fresh, form.get("user", "").strip(), page.actor())
    return page.redirect(f"{settings_url(repo)}#access")
