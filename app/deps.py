"""FastAPI dependencies shared by every domain: settings, database session, blob store, caller.

Everything lives on `app.state` (built by `create_app`), nothing at import time.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from app.auth.permissions import Principal
from app.auth.ratelimit import Limit, count_failure, too_many
from app.auth.service import authenticate_token, note_token_use, token_use_due
from app.blobs import BlobStore
from app.config import Settings
from app.datasets.service import Viewer
from app.db.engine import write_transaction
from app.errors import Forbidden, Unauthorized
from app.http import client_ip
from app.repos.listing import TreeCache


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


def get_db(request: Request) -> Iterator[Session]:
    """The request's session. It is closed as soon as the route function returns (the
    dependency's "function" scope, see SessionDep), before a streamed answer is sent, so a
    download or a slow reader holds no database connection."""
    with get_sessionmaker(request)() as session:
        yield session


# Closed when the route returns, not after the response (FastAPI's default for `yield`).
SessionDep = Annotated[Session, Depends(get_db, scope="function")]


def get_blobs(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.blobs
    return store


def get_tree_cache(request: Request) -> TreeCache:
    """One cache per app, made on first use (trees never change, so it needs no invalidation)."""
    cache: TreeCache | None = getattr(request.app.state, "tree_cache", None)
    if cache is None:
        cache = request.app.state.tree_cache = TreeCache()
    return cache


_viewer_lock = threading.Lock()


def shared_viewer(state: Any) -> Viewer:
    """The process's dataset viewer, made on first use (its caches live as long as the app);
    the viewer API, the pages and conversion on push share it."""
    with _viewer_lock:
        viewer: Viewer | None = getattr(state, "dataset_viewer", None)
        if viewer is None:
            viewer = Viewer(state.settings.data_dir, state.blobs)
            state.dataset_viewer = viewer
        return viewer


def get_viewer(request: Request) -> Viewer:
    return shared_viewer(request.app.state)


def bearer_secret(request: Request) -> str | None:
    """The token from `Authorization: Bearer` or, for git, HTTP Basic's password."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized() from None
        return decoded.partition(":")[2]
    raise Unauthorized()


def get_principal(request: Request, session: SessionDep) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    try:
        principal = _principal(request, session)
    except Unauthorized:
        count_invalid_token(request)
        raise
    # The caller is known before the route runs; end the transaction so that its connection
    # goes back to the pool while the request waits for a thread (the route's next query
    # takes one again; the loaded user and token stay usable: expire_on_commit is off), and
    # before the token's use is written (one connection at a time).
    session.commit()
    if principal.token is not None and token_use_due(principal.token):
        with write_transaction(get_sessionmaker(request)) as writer:
            note_token_use(writer, principal.token.id)
    request.state.principal = principal
    request.state.user_name = principal.name
    return principal


def _principal(request: Request, session: Session) -> Principal:
    secret = bearer_secret(request)
    if secret:
        user, token = authenticate_token(session, secret)
        return Principal.of_token(user, token)
    session_hook = getattr(request.app.state, "session_principal", None)
    principal: Principal | None = session_hook(request, session) if session_hook else None
    return principal or Principal()


def count_invalid_token(request: Request) -> None:
    """Count a refused credential against the caller's address; 429 past the limit.

    Only failures are counted (a valid token costs no write), and a valid token is accepted
    before any limit is looked at: someone guessing from the owner's address (a shared NAT, a
    proxy) cannot lock the owner out. The limit caps the guessing rate, the tokens' 240 random
    bits make the guessing itself hopeless."""
    settings = get_settings(request)
    key = f"token-fail:{client_ip(request)}"
    limit = Limit(key, settings.token_limit_ip, settings.token_window)
    with write_transaction(get_sessionmaker(request)) as session:
        wait = count_failure(session, [limit])
    if wait is not None:
        raise too_many("invalid tokens from your address", wait)


def require_metrics_reader(request: Request, session: SessionDep) -> None:
    """Metrics are for operators: their series name repos and namespaces, private ones too.
    The scraper sends ATRIUM_METRICS_TOKEN as a bearer token; an administrator's hub token
    works as well; anyone else is refused (401 anonymous, 403 signed in)."""
    expected = get_settings(request).metrics_token
    secret = bearer_secret(request)
    scraper = expected.get_secret_value().encode() if expected is not None else None
    if scraper and secret is not None and hmac.compare_digest(secret.encode(), scraper):
        return
    principal = get_principal(request, session)
    if principal.user is None:
        raise Unauthorized(
            "Metrics need the scrape credential (ATRIUM_METRICS_TOKEN) or an admin token"
        )
    if not principal.is_admin:
        raise Forbidden("Only administrators and the metrics scraper may read metrics")


def require_user(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.user is None:
        raise Unauthorized("You must be authenticated to perform this action")
    return principal


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsReader = Depends(require_metrics_reader)
FactoryDep = Annotated[sessionmaker[Session], Depends(get_sessionmaker)]
CacheDep = Annotated[TreeCache, Depends(get_tree_cache)]
ViewerDep = Annotated[Viewer, Depends(get_viewer)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserDep = Annotated[Principal, Depends(require_user)]
