"""Hosted inference routes: the Inference API (`/models/{ns}/{name}`) and, from
`app/inference/openai.py`, the OpenAI-compatible `/v1` API.

The pool starts with the app (this router's lifespan) and is reached through `InferenceDep`.
InferenceClient(model="http://<atrium>/models/ns/name") posts every task to exactly that URL
(`_providers/hf_inference.py: _prepare_url`), and chat to `<url>/v1/chat/completions`.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from app.auth.permissions import Principal
from app.deps import MetricsReader, PrincipalDep, UserDep
from app.errors import Forbidden
from app.inference.deps import Inference, InferenceDep, lifespan, loading_response
from app.inference.errors import ModelLoading
from app.inference.openai import router as openai_router
from app.inference.protocol import Item, Outcome
from app.inference.requests import (
    HfRequest,
    check_params,
    parse_body,
    parse_image_body,
    tgi_details,
)
from app.inference.service import IMAGE_TASKS, ModelSpec

router = APIRouter(lifespan=lifespan, tags=["inference"])


async def run_task(
    request: Request,
    inference: Inference,
    principal: Principal,
    repo_id: str,
    task: str | None,
) -> Response:
    revision = request.query_params.get("revision")
    try:
        spec = await inference.spec(request, principal, repo_id, revision, task)
        parsed = await _parse(request, spec.task)
        if parsed.stream and spec.task == "text-generation":
            return await _stream_tgi(inference, spec, parsed.item, parsed.wait_for_model)
        value = await inference.pool.infer(
            spec, parsed.task, parsed.item, wait=parsed.wait_for_model
        )
    except ModelLoading as exc:
        return loading_response(exc)
    return JSONResponse(_shape(parsed.task, parsed.item, value), headers=_model_headers(spec))


async def _parse(request: Request, task: str) -> HfRequest:
    raw = await request.body()
    if task not in IMAGE_TASKS:
        return parse_body(task, raw)
    parsed = parse_image_body(raw, request.headers.get("content-type", ""))
    item = Item(parsed.item.inputs, check_params(task, parsed.item.params))
    return replace(parsed, task=task, item=item)


def _model_headers(spec: ModelSpec) -> dict[str, str]:
    return {"X-Repo-Commit": spec.sha, "X-Inference-Task": spec.task}


def _shape(task: str, item: Item, value: Any) -> Any:
    """Worker values -> Inference API JSON (only generation needs reshaping)."""
    if task != "text-generation":
        return value
    answer: dict[str, Any] = {"generated_text": value["text"]}
    if item.params.get("details"):
        answer["details"] = tgi_details(value)
    return [answer]


async def _stream_tgi(inference: Inference, spec: ModelSpec, item: Item, wait: bool) -> Response:
    """TGI's token stream (`data: {"token": {...}, "generated_text", "details"}`); the last
    token event carries the full text, as `_stream_text_generation_response` expects."""
    events = inference.pool.stream(spec, "text-generation", item, wait=wait)
    first = await anext(events)  # errors (loading, queue full) before any byte is sent

    async def body() -> AsyncIterator[bytes]:
        held: tuple[int, str] | None = None
        index = 0
        async for event in _chain(first, events):
            if isinstance(event, Outcome):
                final = event.value
                if held is not None:
                    yield _sse(_token_event(index, held, final))
                break
            if held is not None:
                yield _sse(_token_event(index, held, None))
                index += 1
            held = event

    return StreamingResponse(body(), media_type="text/event-stream")


async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for event in rest:
        yield event


def _token_event(index: int, token: tuple[int, str], final: dict[str, Any] | None) -> Any:
    event: dict[str, Any] = {
        "index": index,
        "token": {"id": token[0], "text": token[1], "logprob": 0.0, "special": False},
        "generated_text": None,
        "details": None,
    }
    if final is not None:
        event["generated_text"] = final["text"]
        details = tgi_details(final)
        event["details"] = {k: details[k] for k in ("finish_reason", "generated_tokens", "seed")}
    return event


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


@router.post("/models/{namespace}/{name}", summary="Inference API: run the repo's task")
async def infer(
    namespace: str, name: str, request: Request, inference: InferenceDep, principal: PrincipalDep
) -> Response:
    return await run_task(request, inference, principal, f"{namespace}/{name}", None)


@router.post("/models/{namespace}/{name}/pipeline/{task}", summary="Inference API: run a task")
async def infer_task(
    namespace: str,
    name: str,
    task: str,
    request: Request,
    inference: InferenceDep,
    principal: PrincipalDep,
) -> Response:
    return await run_task(request, inference, principal, f"{namespace}/{name}", task)


@router.get("/api/inference/status", summary="Workers and their loaded models (admins)")
def inference_status(inference: InferenceDep, principal: UserDep) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("Only administrators may see the inference workers")
    return {"workers": inference.pool.status(), "time": time.time()}


@router.get(
    "/api/inference/metrics",
    summary="Prometheus metrics of the inference pool",
    dependencies=[MetricsReader],
)
def inference_metrics(inference: InferenceDep) -> Response:
    return Response(inference.pool.metrics.render(), media_type="text/plain; version=0.0.4")


router.include_router(openai_router)
