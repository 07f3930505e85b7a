"""Collection pages: `/collections/{owner}/{slug}` shows a collection's items (those the viewer
may read); its editors add repos with a note, remove items, and delete it; `/collections/new`
makes one. Profiles list their namespace's collections; repo cards, the collections they are
in. The rules are app.collections.service's, behind CSRF protection."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from app.auth.permissions import can_write
from app.collections import service
from app.db.engine import write_transaction
from app.errors import AtriumError
from app.web.pages import Page, PageDep, PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _url(slug: str) -> str:
    return f"/collections/{slug}"


@router.get("/collections/new")
def new_page(page: PageDep) -> Response:
    principal = page.require_user()
    namespaces = sorted(principal.user_namespaces(page.db, write=True))
    return page.render("collection_new.html", namespaces=namespaces)


@router.post("/collections/new")
async def create(page: PageDep) -> Response:
    form = await page.form()
    principal = page.require_user()
    with write_transaction(page.request.app.state.sessionmaker) as db:
        made = service.create(
            db,
            principal,
            namespace=form.get("namespace") or principal.name or "",
            title=form.get("title", ""),
            description=form.get("description"),
            private=form.get("private") == "on",
        )
        slug = service.slug_of(made)
    return page.redirect(_url(slug))


def _view(page: Page, owner: str, name: str, **context: Any) -> Response:
    found = service.find(page.db, page.principal, f"{owner}/{name}")
    editor = page.session.user is not None and can_write(
        page.db, page.principal, found.owner, None, create=True
    )
    return page.render(
        "collection.html",
        collection=found,
        slug=service.slug_of(found),
        items=service.shown_items(page.db, page.principal, found),
        editor=editor,
        **context,
    )


@router.get("/collections/{owner}/{name}")
def collection_page(page: PageDep, owner: str, name: str) -> Response:
    return _view(page, owner, name)


@router.post("/collections/{owner}/{name}/items")
async def add_item(page: PageDep, owner: str, name: str) -> Response:
    form = await page.form()
    page.require_user()
    try:
        with write_transaction(page.request.app.state.sessionmaker) as db:
            found = service.find(db, page.principal, f"{owner}/{name}")
            service.add_item(
                db,
                page.principal,
                found,
                form.get("item", "").strip(),
                form.get("type", "model"),
                form.get("note"),
            )
            slug = service.slug_of(found)
    except AtriumError as exc:
        page.db.rollback()
        return _view(page, owner, name, error=exc.message)
    return page.redirect(_url(slug))


@router.post("/collections/{owner}/{name}/items/{uid}/delete")
async def remove_item(page: PageDep, owner: str, name: str, uid: str) -> Response:
    await page.form()
    page.require_user()
    with write_transaction(page.request.app.state.sessionmaker) as db:
        found = service.find(db, page.principal, f"{owner}/{name}")
        service.require_editor(db, page.principal, found)
        service.delete_item(db, found, service.item_of(db, found, uid))
        slug = service.slug_of(found)
    return page.redirect(_url(slug))


@router.post("/collections/{owner}/{name}/delete")
async def delete(page: PageDep, owner: str, name: str) -> Response:
    await page.form()
    page.require_user()
    with write_transaction(page.request.app.state.sessionmaker) as db:
        found = service.find(db, page.principal, f"{owner}/{name}")
        service.require_editor(db, page.principal, found)
        db.delete(found)
    return page.redirect(f"/{owner}")
