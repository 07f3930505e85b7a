"""Webhooks, the Hub's API as huggingface_hub calls it (`create_webhook`, `list_webhooks`,
`get_webhook`, `update_webhook`, `enable_webhook`, `disable_webhook`, `delete_webhook`, and
the `hf webhooks` CLI), under `/api/settings/webhooks`; plus `…/{id}/deliveries`, the last
deliveries with their status, for the owner. Each user manages their own webhooks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from app.db.engine import write_transaction
from app.deps import FactoryDep, PrincipalDep, SessionDep, SettingsDep
from app.http import json_object
from app.webhooks import service

router = APIRouter(tags=["webhooks"])
BASE = "/api/settings/webhooks"


@router.get(BASE)
def list_webhooks(session: SessionDep, principal: PrincipalDep) -> JSONResponse:
    user = service.require_owner(principal, write=False)
    return JSONResponse([service.as_json(h) for h in service.owned(session, user)])


@router.post(BASE)
async def create_webhook(
    request: Request, principal: PrincipalDep, factory: FactoryDep, settings: SettingsDep
) -> JSONResponse:
    service.require_owner(principal, write=True)
    body = await json_object(request)

    def run() -> dict[str, Any]:
        with write_transaction(factory) as session:
            user = service.require_owner(principal, write=True)
            return service.as_json(service.create(session, user, body, settings))

    return JSONResponse({"webhook": await run_in_threadpool(run)})


@router.get(BASE + "/{uid}")
def get_webhook(uid: str, session: SessionDep, principal: PrincipalDep) -> JSONResponse:
    user = service.require_owner(principal, write=False)
    return JSONResponse({"webhook": service.as_json(service.find(session, user, uid))})


@router.get(BASE + "/{uid}/deliveries")
def list_deliveries(uid: str, session: SessionDep, principal: PrincipalDep) -> JSONResponse:
    user = service.require_owner(principal, write=False)
    hook = service.find(session, user, uid)
    return JSONResponse([service.delivery_json(d) for d in service.deliveries(session, hook)])


@router.post(BASE + "/{uid}")
async def update_webhook(
    uid: str,
    request: Request,
    principal: PrincipalDep,
    factory: FactoryDep,
    settings: SettingsDep,
) -> JSONResponse:
    service.require_owner(principal, write=True)
    body = await json_object(request)

    def run() -> dict[str, Any]:
        with write_transaction(factory) as session:
            user = service.require_owner(principal, write=True)
            hook = service.find(session, user, uid)
            service.change(hook, body, settings)
            return service.as_json(hook)

    return JSONResponse({"webhook": await run_in_threadpool(run)})


def _toggle(uid: str, principal: Any, factory: Any, enabled: bool) -> JSONResponse:
    with write_transaction(factory) as session:
        user = service.require_owner(principal, write=True)
        hook = service.find(session, user, uid)
        service.set_enabled(hook, enabled)
        return JSONResponse({"webhook": service.as_json(hook)})


@router.post(BASE + "/{uid}/enable")
def enable_webhook(uid: str, principal: PrincipalDep, factory: FactoryDep) -> JSONResponse:
    return _toggle(uid, principal, factory, True)


@router.post(BASE + "/{uid}/disable")
def disable_webhook(uid: str, principal: PrincipalDep, factory: FactoryDep) -> JSONResponse:
    return _toggle(uid, principal, factory, False)


@router.delete(BASE + "/{uid}")
def delete_webhook(uid: str, principal: PrincipalDep, factory: FactoryDep) -> Response:
    with write_transaction(factory) as session:
        user = service.require_owner(principal, write=True)
        session.delete(service.find(session, user, uid))
    return JSONResponse({})
