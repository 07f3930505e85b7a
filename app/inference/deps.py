"""The inference pool's place in the app: started by the router's lifespan, reached by routes
through `InferenceDep`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from app.auth.permissions import Principal
from app.errors import NotFound
from app.http import error_response
from app.inference.config import InferenceSettings
from app.inference.errors import ModelLoading
from app.inference.pool import Pool
from app.inference.service import ModelSpec, Resolver, SpecCache

PUBLIC_SPEC_TTL_S = 1.0
RECENT_SPECS = 4096  # distinct (repo, revision, task) answers kept at most


@dataclass
class Inference:
    """What the routes need: the pool, the resolver and the settings."""

    pool: Pool
    resolver: Resolver
    settings: InferenceSettings
    recent: dict[tuple[str, str | None, str | None], tuple[float, ModelSpec]] = field(
        default_factory=dict
    )

    async def spec(
        self,
        request: Request,
        principal: Principal,
        repo_id: str,
        revision: str | None,
        task: str | None = None,
    ) -> ModelSpec:
        """Resolve in a thread (the database calls are synchronous). A public repo's answer
        is reused for PUBLIC_SPEC_TTL_S: under load this saves two queries and a thread hop
        per request, and a new commit is still picked up within that second."""
        request.state.repo_id = repo_id
        key = (repo_id, revision, task)
        hit = self.recent.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]

        def resolve() -> ModelSpec:
            with request.app.state.sessionmaker() as session:
                return self.resolver.resolve(session, principal, repo_id, revision, task)

        spec: ModelSpec = await run_in_threadpool(resolve)
        if spec.public:
            if len(self.recent) > RECENT_SPECS:
                self.recent.clear()
            self.recent[key] = (time.monotonic() + PUBLIC_SPEC_TTL_S, spec)
        return spec


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = InferenceSettings()
    if not settings.enabled:
        yield
        return
    core = app.state.settings
    pool = Pool(core, settings)
    pool.start()
    resolver = Resolver(
        blobs=app.state.blobs,
        cache=SpecCache(),
        dtype_bytes=bytes_per_weight(settings, pool.links[0].device if pool.links else "cpu"),
        pickle_repos=frozenset(settings.pickle_repos),
    )
    app.state.inference = Inference(pool, resolver, settings)
    shared = getattr(getattr(app.state, "metrics", None), "add_collector", None)
    if shared is not None:
        shared(pool.metrics)  # appear on the app-wide /metrics too
    try:
        yield
    finally:
        await pool.close()


def bytes_per_weight(settings: InferenceSettings, device: str) -> int | None:
    """What a float weight costs once loaded, for the memory estimate (None: as stored)."""
    if settings.quantize:
        return 1  # 8-bit; 4-bit takes half, so the estimate errs on the safe side
    if settings.dtype == "auto":
        return 2 if device.startswith("cuda") else None
    return 4 if settings.dtype == "float32" else 2


def get_inference(request: Request) -> Inference:
    inference: Inference | None = getattr(request.app.state, "inference", None)
    if inference is None:
        raise NotFound("Inference is disabled on this hub (ATRIUM_INFERENCE_ENABLED=false)")
    return inference


InferenceDep = Annotated[Inference, Depends(get_inference)]


def loading_response(exc: ModelLoading) -> Response:
    """The Inference API's 503: `{"error", "estimated_time"}` (huggingface.co's shape)."""
    plain = error_response(exc.status, exc.message, exc.code, exc.headers)
    headers = {k: v for k, v in plain.headers.items() if k.lower().startswith(("x-", "retry"))}
    body = {"error": exc.message, "estimated_time": exc.estimated_time}
    return JSONResponse(body, status_code=exc.status, headers=headers)
