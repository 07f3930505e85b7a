"""OpenAI-compatible routes: `/v1/models`, `/v1/chat/completions`, `/v1/completions`,
`/v1/embeddings`, plus `/models/{ns}/{name}/v1/chat/completions`, the URL InferenceClient's
chat_completion builds from a model URL (`_build_chat_completion_url`; it sends
`"model": "dummy"` there, so the repo comes from the path).

`model` is a repo id, optionally `repo@revision`. The official `openai` client asks for
embeddings as base64 unless told otherwise, so both encodings are answered.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import or_, select
from starlette.concurrency import run_in_threadpool

from app.auth.permissions import Principal
from app.deps import PrincipalDep
from app.inference.deps import Inference, InferenceDep, loading_response
from app.inference.errors import InputError, ModelLoading
from app.inference.protocol import Item, Outcome
from app.inference.service import ModelSpec
from app.repos.models import Repo

router = APIRouter(tags=["inference"])
MODELS_LISTED = 1000
# What each task serves on this API: `/v1/models` lists only repos that serve something here.
OPENAI_ENDPOINTS = {
    "text-generation": ["chat.completions", "completions"],
    "feature-extraction": ["embeddings"],
    "sentence-similarity": ["embeddings"],
}
UNSUPPORTED_CHAT_FIELDS = ("tools", "functions", "logit_bias", "audio")


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str = "dummy"
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = False
    stream_options: dict[str, Any] | None = None

    def generation_params(self) -> dict[str, Any]:
        stop = [self.stop] if isinstance(self.stop, str) else self.stop
        params = {
            "max_new_tokens": self.max_completion_tokens or self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": stop,
            "seed": self.seed,
        }
        return {k: v for k, v in params.items() if v is not None}


class ChatBody(_Body):
    messages: list[dict[str, Any]] = Field(min_length=1)


class CompletionBody(_Body):
    prompt: str | list[str]


class EmbeddingBody(BaseModel):
    model: str
    input: str | list[str]
    encoding_format: Literal["float", "base64"] = "float"


def split_model(model: str) -> tuple[str, str | None]:
    repo_id, _, revision = model.partition("@")
    if repo_id.count("/") != 1:
        raise InputError(f"model must be a repo id (namespace/name[@revision]), not {model!r}")
    return repo_id, revision or None


async def _spec(
    request: Request, inference: Inference, principal: Principal, model: str, task: str | None
) -> ModelSpec:
    repo_id, revision = split_model(model)
    return await inference.spec(request, principal, repo_id, revision, task)


def _chat_item(body: ChatBody) -> Item:
    for field in UNSUPPORTED_CHAT_FIELDS:
        if getattr(body, field, None):
            raise InputError(f"{field} is not supported by this server")
    for message in body.messages:
        if not isinstance(message.get("role"), str):
            raise InputError("each message needs a role")
        content = message.get("content")
        if isinstance(content, list):  # OpenAI content parts: only text is understood
            texts = [p.get("text", "") for p in content if isinstance(p, dict)]
            message["content"] = "".join(texts)
    return Item(body.messages, body.generation_params())


@router.post("/v1/chat/completions", summary="OpenAI chat completions")
async def chat(
    body: ChatBody, request: Request, inference: InferenceDep, principal: PrincipalDep
) -> Response:
    return await _chat(request, inference, principal, body, body.model)


@router.post("/models/{namespace}/{name}/v1/chat/completions", summary="Chat with one repo")
async def chat_on_repo(
    namespace: str,
    name: str,
    body: ChatBody,
    request: Request,
    inference: InferenceDep,
    principal: PrincipalDep,
) -> Response:
    revision = request.query_params.get("revision")
    model = f"{namespace}/{name}" + (f"@{revision}" if revision else "")
    return await _chat(request, inference, principal, body, model)


async def _chat(
    request: Request, inference: Inference, principal: Principal, body: ChatBody, model: str
) -> Response:
    try:
        spec = await _spec(request, inference, principal, model, None)
        if spec.task != "text-generation":
            raise InputError(f"{spec.repo_id} is a {spec.task} model; chat needs text-generation")
        item = _chat_item(body)
        names = _Names(spec.repo_id if body.model == "dummy" else body.model, "chat.completion")
        if body.stream:
            return await _stream(inference, spec, "chat", item, names, body)
        value = await inference.pool.infer(spec, "chat", item, wait=True)
    except ModelLoading as exc:
        return loading_response(exc)
    message = {"role": "assistant", "content": value["text"]}
    choice = {"index": 0, "message": message, "finish_reason": value["finish_reason"]}
    return JSONResponse(names.envelope([{**choice, "logprobs": None}], _usage(value)))


@router.post("/v1/completions", summary="OpenAI text completions")
async def completions(
    body: CompletionBody, request: Request, inference: InferenceDep, principal: PrincipalDep
) -> Response:
    prompt = body.prompt if isinstance(body.prompt, str) else "".join(body.prompt[:1])
    if isinstance(body.prompt, list) and len(body.prompt) != 1:
        raise InputError("prompt must be one string")
    try:
        spec = await _spec(request, inference, principal, body.model, "text-generation")
        item = Item(prompt, body.generation_params())
        names = _Names(body.model, "text_completion")
        if body.stream:
            return await _stream(inference, spec, "text-generation", item, names, body)
        value = await inference.pool.infer(spec, "text-generation", item, wait=True)
    except ModelLoading as exc:
        return loading_response(exc)
    choice = {"index": 0, "text": value["text"], "finish_reason": value["finish_reason"]}
    return JSONResponse(names.envelope([{**choice, "logprobs": None}], _usage(value)))


@router.post("/v1/embeddings", summary="OpenAI embeddings")
async def embeddings(
    body: EmbeddingBody, request: Request, inference: InferenceDep, principal: PrincipalDep
) -> Response:
    texts = [body.input] if isinstance(body.input, str) else body.input
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise InputError("input must be a non-empty string or list of strings")
    try:
        spec = await _spec(request, inference, principal, body.model, "feature-extraction")
        item = Item(texts, {"pooled": True})
        vectors = await inference.pool.infer(spec, "feature-extraction", item, wait=True)
    except ModelLoading as exc:
        return loading_response(exc)
    data = [
        {"object": "embedding", "index": i, "embedding": _encode(v, body.encoding_format)}
        for i, v in enumerate(vectors)
    ]
    usage = {"prompt_tokens": 0, "total_tokens": 0}
    return JSONResponse({"object": "list", "data": data, "model": body.model, "usage": usage})


def _encode(vector: list[float], encoding: str) -> Any:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector


@router.get("/v1/models", summary="OpenAI model list: the model repos the caller may use")
async def models(request: Request, principal: PrincipalDep) -> dict[str, Any]:
    def listing() -> list[dict[str, Any]]:
        with request.app.state.sessionmaker() as session:
            readable = principal.namespaces(session, write=False)
            tasks = list(OPENAI_ENDPOINTS)
            query = select(Repo).where(Repo.type == "model", Repo.pipeline_tag.in_(tasks))
            if not principal.is_admin:
                query = query.where(or_(Repo.private.is_(False), Repo.namespace.in_(readable)))
            rows = session.scalars(query.order_by(Repo.id).limit(MODELS_LISTED))
            return [_model_entry(repo) for repo in rows]

    return {"object": "list", "data": await run_in_threadpool(listing)}


def _model_entry(repo: Repo) -> dict[str, Any]:
    return {
        "id": f"{repo.namespace}/{repo.name}",
        "object": "model",
        "created": int(repo.created_at.timestamp()),
        "owned_by": repo.namespace,
        "endpoints": OPENAI_ENDPOINTS.get(repo.pipeline_tag or "", []),
    }


class _Names:
    """id, object and model names shared by every chunk of one answer."""

    def __init__(self, model: str, kind: str):
        self.id = ("chatcmpl-" if kind.startswith("chat") else "cmpl-") + secrets.token_hex(12)
        self.model = model
        self.kind = kind
        self.created = int(time.time())

    def envelope(self, choices: list[Any], usage: Any = None, chunk: bool = False) -> Any:
        kind = self.kind + (".chunk" if chunk and self.kind.startswith("chat") else "")
        answer = {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "atrium",
            "choices": choices,
        }
        if usage is not None:
            answer["usage"] = usage
        return answer


def _usage(value: dict[str, Any]) -> dict[str, int]:
    prompt, completion = value["prompt_tokens"], len(value["tokens"])
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


async def _stream(
    inference: Inference, spec: ModelSpec, task: str, item: Item, names: _Names, body: _Body
) -> Response:
    events = inference.pool.stream(spec, task, item, wait=True)
    first = await anext(events)  # errors before the first byte are plain HTTP errors
    chat = task == "chat"
    with_usage = bool((body.stream_options or {}).get("include_usage"))

    def piece(text: str | None, finish: str | None, role: bool = False) -> bytes:
        if chat:
            delta = {"role": "assistant", "content": text or ""} if role else {"content": text}
            choice: dict[str, Any] = {"index": 0, "delta": delta if text or role else {}}
        else:
            choice = {"index": 0, "text": text or ""}
        choice |= {"finish_reason": finish, "logprobs": None}
        return _sse(names.envelope([choice], chunk=True))

    async def stream() -> AsyncIterator[bytes]:
        if chat:
            yield piece("", None, role=True)
        async for event in _chain(first, events):
            if isinstance(event, Outcome):
                yield piece(None, event.value["finish_reason"])
                if with_usage:
                    yield _sse(names.envelope([], _usage(event.value), chunk=True))
                break
            if event[1]:
                yield piece(event[1], None)
        yield b"data: [DONE]\n\n"

    return StreamingResponse(stream(), media_type="text/event-stream")


async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for event in rest:
        yield event


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()
