"""The application factory: `create_app(settings)` wires storage, routers and middleware."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from app import __version__
from app.audit.routes import router as audit_router
from app.auth.routes import router as auth_router
from app.blobs import BlobStore, create_blob_store
from app.cards.derived import ModelFacts
from app.config import Settings
from app.datasets import routes as datasets
from app.db.engine import check_database, make_engine, make_sessionmaker
from app.deps import BlobsDep, SessionDep
from app.git import routes as git
from app.http import RequestContextMiddleware, install_error_handlers
from app.hub import routes as hub
from app.inference import routes as inference
from app.lfs import routes as lfs
from app.metrics import InstrumentedBlobStore, install_metrics
from app.quotas import routes as quotas
from app.repos.events import EventBus
from app.security.service import PickleScans
from app.web import routes as web
from app.web import session as web_session
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
        app.state.events.start(settings.events_poll_seconds)
        yield
        app.state.events.stop()
        viewer = getattr(app.state, "dataset_viewer", None)  # created by its first request
        if viewer is not None:
            viewer.close()
        engine.dispose()

    app = FastAPI(
        title="Atrium",
        version=__version__,
        description="A self-hosted model and dataset hub, compatible with the Hugging Face Hub.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.blobs = InstrumentedBlobStore(blobs, install_metrics(app))
    app.state.events = event_bus(app.state.sessionmaker, app.state.blobs)
    # The API also accepts the browser's session cookie (CSRF-checked for unsafe methods).
    app.state.session_principal = web_session.session_principal
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware,
        max_body=settings.max_request_body,
        self_bounded=lfs.is_signed_object_put,
    )
    app.include_router(_system_router())
    app.include_router(auth_router)
    app.include_router(audit_router)
    # Specific prefixes first; the web pages' catch-all `/{namespace}/{name}` routes come last.
    for module in (hub, lfs, xet, git, inference, datasets, quotas, web):
        app.include_router(module.router)
    return app


def event_bus(factory: sessionmaker[Session], blobs: BlobStore) -> EventBus:
    """The follow-up work of every ref move (`app.repos.refs`), delivered after each commit."""
    bus = EventBus(factory, [PickleScans(factory, blobs), ModelFacts(factory, blobs)])
    bus.attach()
    return bus


def check_storage(app: FastAPI) -> None:
    """Raise ConfigError when the database or blob store does not answer (for `serve`)."""
    check_database(app.state.engine)
    app.state.blobs.check()


def _system_router() -> Any:
    from fastapi import APIRouter

    router = APIRouter(tags=["system"])

    @router.get("/health")
    def health(session: SessionDep, blobs: BlobsDep) -> dict[str, str]:
        session.execute(text("SELECT 1"))
        blobs.size("health/probe")
        return {"status": "ok"}

    @router.get("/api/agent-harnesses", include_in_schema=False)
    def agent_harnesses() -> dict[str, Any]:
        # huggingface_hub's once-a-day telemetry probe (hf-protocol.md §1).
        return {"standardEnvVars": [], "harnesses": {}}

    return router


logging.getLogger("atrium").addHandler(logging.NullHandler())
