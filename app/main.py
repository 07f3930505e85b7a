"""The application factory: `create_app(settings)` wires storage, routers and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request, Response
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from app import __version__
from app.audit.routes import router as audit_router
from app.auth.routes import router as auth_router
from app.blobs import BlobStore, create_blob_store
from app.cards.derived import ModelFacts
from app.collections import routes as collections
from app.config import Settings
from app.datasets import routes as datasets
from app.datasets.service import ParquetOnPush
from app.db.engine import check_database, make_engine, make_sessionmaker
from app.deps import shared_viewer
from app.discussions import routes as discussions
from app.discussions.service import PullRequestCommits
from app.follows import routes as follows
from app.gating import routes as gating
from app.git import routes as git
from app.http import RequestContextMiddleware, install_error_handlers
from app.hub import fallback as api_fallback
from app.hub import routes as hub
from app.inference import routes as inference
from app.lfs import routes as lfs
from app.likes import routes as likes
from app.metrics import InstrumentedBlobStore, install_metrics
from app.quotas import routes as quotas
from app.repos.events import Consumer, EventBus
from app.security.service import PickleScans
from app.web import routes as web
from app.web import session as web_session
from app.webhooks import routes as webhooks
from app.webhooks.service import Sender, WebhookEvents
from app.xet import routes as xet


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; storage is checked at start-up, so bad settings fail fast with one line."""
    settings = (settings or Settings()).resolved()
    engine = make_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout,
    )
    blobs = create_blob_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.request_threads
        app.state.events.start(settings.events_poll_seconds)
        app.state.webhooks.start(settings.webhook_poll_seconds)
        yield
        app.state.webhooks.stop()
        app.state.events.stop()
        if getattr(app.state, "health_lane", None) is not None:
            app.state.health_lane[1].dispose()
        viewer = getattr(app.state, "dataset_viewer", None)  # created by its first request
        if viewer is not None:
            viewer.close()
        engine.dispose()

    app = FastAPI(
        title="Atrium",
        version=__version__,
        description="A self-hosted model and dataset hub, compatible with the Hugging Face Hub.",
        lifespan=lifespan,
        docs_url=None,  # served by `_docs_router` from the installed Swagger UI
        redoc_url=None,  # ReDoc exists only on a CDN
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.blobs = InstrumentedBlobStore(blobs, install_metrics(app))
    app.state.events = event_bus(app.state, settings)
    app.state.webhooks = Sender(app.state.sessionmaker, settings)
    # The API also accepts the browser's session cookie (CSRF-checked for unsafe methods).
    app.state.session_principal = web_session.session_principal
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body=settings.max_request_body,
        self_bounded=lfs.is_signed_object_put,
    )
    app.include_router(_system_router())
    _install_docs(app)
    app.include_router(auth_router)
    app.include_router(audit_router)
    # Specific prefixes first; the web pages' catch-all `/{namespace}/{name}` routes come last.
    protocols = (hub, lfs, xet, git, inference, datasets)
    domains = (quotas, gating, discussions, likes, follows, webhooks, collections)
    for module in (*protocols, *domains):
        app.include_router(module.router)
    app.include_router(api_fallback.router)  # an unknown /api/ path: a 404 of its own
    app.include_router(web.router)
    return app


def event_bus(state: Any, settings: Settings) -> EventBus:
    """The follow-up work of every ref move (`app.repos.refs`), delivered after each commit
    (dataset conversions by the event poller only)."""
    factory: sessionmaker[Session] = state.sessionmaker
    blobs: BlobStore = state.blobs
    consumers: list[Consumer] = [
        PickleScans(factory, blobs),
        ModelFacts(factory, blobs),
        PullRequestCommits(factory),
        WebhookEvents(factory, settings),
        ParquetOnPush(factory, lambda: shared_viewer(state)),
    ]
    bus = EventBus(factory, consumers)
    bus.attach()
    return bus


def check_storage(app: FastAPI) -> None:
    """Raise ConfigError when the database or blob store does not answer (for `serve`)."""
    check_database(app.state.engine)
    app.state.blobs.check()


DOCS_ASSETS = "/docs/assets"


def _install_docs(app: FastAPI) -> None:
    """`/docs`: Swagger UI from the `swagger-ui-py` package's files, so that a hub without
    internet access shows its API too (FastAPI's default loads it from a public CDN)."""
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    assets = str(files("swagger_ui") / "static")
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), "docs")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title="Atrium API",
            swagger_js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )


def _system_router() -> Any:
    from fastapi import APIRouter

    router = APIRouter(tags=["system"])

    @router.get("/health")
    async def health(request: Request) -> dict[str, str]:
        """Whether the database and the store answer, in a lane of its own: its probe runs
        on two threads and one database connection kept for it, so a load that fills the
        request threads and the pool does not make a load balancer think the server died."""
        state = request.app.state
        if getattr(state, "health_lane", None) is None:
            state.health_lane = (
                anyio.CapacityLimiter(2),
                make_engine(state.settings.database_url, pool_size=1, max_overflow=0),
            )
        limiter, engine = state.health_lane

        def probe() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            state.blobs.size("health/probe")

        await anyio.to_thread.run_sync(probe, limiter=limiter)
        return {"status": "ok"}

    @router.get("/api/agent-harnesses", include_in_schema=False)
    def agent_harnesses() -> dict[str, Any]:
        # huggingface_hub's once-a-day telemetry probe (hf-protocol.md §1).
        return {"standardEnvVars": [], "harnesses": {}}

    return router


logging.getLogger("atrium").addHandler(logging.NullHandler())
