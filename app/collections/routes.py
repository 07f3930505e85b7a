"""Collections, the Hub's API as huggingface_hub calls it: `list_collections` (owner, item,
sort), `get_collection`, `create_collection`, `update_collection_metadata`,
`delete_collection`, `add_collection_item`, `update_collection_item`,
`delete_collection_item`, under `/api/collections`. A slug is `owner/title-uid`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from app.auth.permissions import can_read
from app.collections import service
from app.db.engine import write_transaction
from app.deps import FactoryDep, PrincipalDep, SessionDep
from app.errors import BadRequest
from app.http import header_value, json_object
from app.repos.service import find_repo

router = APIRouter(tags=["collections"])
ONE = "/api/collections/{owner}/{name}"


@router.get("/api/collections")
def list_collections(
    session: SessionDep,
    principal: PrincipalDep,
    owner: Annotated[str | None, Query(max_length=96)] = None,
    item: Annotated[str | None, Query(max_length=300)] = None,
    sort: Annotated[str | None, Query(max_length=20)] = None,
    limit: Annotated[int | None, Query(ge=1, le=200)] = None,
) -> JSONResponse:
    if item:
        kind, _, repo_id = item.partition("s/")
        repo = find_repo(session, kind, repo_id) if kind in ("model", "dataset", "space") else None
        key = (repo.type, repo.repo_id) if repo is not None else None
        if repo is None or not can_read(session, principal, repo.namespace, repo.private, key):
            return JSONResponse([])
        found = service.containing(session, principal, repo)
        if owner:
            found = [c for c in found if c.owner == owner]
    else:
        found = service.visible(session, principal, owner)
    if sort == "lastModified":
        found.sort(key=lambda c: c.updated_at, reverse=True)
    elif sort == "trending" or sort == "upvotes":
        found.sort(key=lambda c: c.position)
    shown = [service.as_json(session, principal, c) for c in found[: limit or len(found)]]
    for entry in shown:
        entry.pop("position")  # the client numbers a listing itself
    return JSONResponse(shown)


@router.post("/api/collections")
async def create_collection(
    request: Request, principal: PrincipalDep, factory: FactoryDep
) -> JSONResponse:
    body = await json_object(request)
    namespace = body.get("namespace") or principal.name
    if not isinstance(namespace, str) or not namespace:
        raise BadRequest("Sign in, or name the namespace that owns the collection")
    try:
        with write_transaction(factory) as session:
            made = service.create(
                session,
                principal,
                namespace=namespace,
                title=body.get("title"),
                description=body.get("description"),
                private=bool(body.get("private")),
            )
            answer = service.as_json(session, principal, made)
    except service.Exists as exists:
        headers = {"X-Error-Message": header_value(exists.message)}
        return JSONResponse({"error": exists.message, "slug": exists.slug}, 409, headers)
    return JSONResponse(answer)


@router.get(ONE)
def get_collection(
    owner: str, name: str, session: SessionDep, principal: PrincipalDep
) -> JSONResponse:
    found = service.find(session, principal, f"{owner}/{name}")
    return JSONResponse(service.as_json(session, principal, found))


@router.patch(ONE)
async def update_collection(
    owner: str, name: str, request: Request, principal: PrincipalDep, factory: FactoryDep
) -> JSONResponse:
    body = await json_object(request)
    with write_transaction(factory) as session:
        found = service.find(session, principal, f"{owner}/{name}")
        service.require_editor(session, principal, found)
        service.update(found, body)
        answer = service.as_json(session, principal, found)
    return JSONResponse({"success": True, "data": answer})


@router.delete(ONE)
def delete_collection(
    owner: str, name: str, principal: PrincipalDep, factory: FactoryDep
) -> JSONResponse:
    with write_transaction(factory) as session:
        found = service.find(session, principal, f"{owner}/{name}")
        service.require_editor(session, principal, found)
        session.delete(found)
    return JSONResponse({})


@router.post(ONE + "/items")
async def add_item(
    owner: str, name: str, request: Request, principal: PrincipalDep, factory: FactoryDep
) -> JSONResponse:
    body = await json_object(request)
    item = body.get("item")
    if not isinstance(item, dict) or not isinstance(item.get("id"), str):
        raise BadRequest("'item' is {id, type}")
    with write_transaction(factory) as session:
        found = service.find(session, principal, f"{owner}/{name}")
        service.add_item(
            session, principal, found, item["id"], str(item.get("type")), body.get("note")
        )
        answer = service.as_json(session, principal, found)
    return JSONResponse(answer)


@router.patch(ONE + "/items/{uid}")
async def update_item(
    owner: str,
    name: str,
    uid: str,
    request: Request,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    body = await json_object(request)
    with write_transaction(factory) as session:
        found = service.find(session, principal, f"{owner}/{name}")
        service.require_editor(session, principal, found)
        service.update_item(session, found, service.item_of(session, found, uid), body)
    return JSONResponse({})


@router.delete(ONE + "/items/{uid}")
def delete_item(
    owner: str, name: str, uid: str, principal: PrincipalDep, factory: FactoryDep
) -> JSONResponse:
    with write_transaction(factory) as session:
        found = service.find(session, principal, f"{owner}/{name}")
        service.require_editor(session, principal, found)
        service.delete_item(session, found, service.item_of(session, found, uid))
    return JSONResponse({})
