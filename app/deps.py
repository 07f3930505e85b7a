"""FastAPI dependencies shared by every domain: settings, database session, blob store, caller.

Everything lives on `app.state` (built by `create_app`), nothing at import time.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from app.auth.permissions import Principal
from app.auth.service import authenticate_token
from app.blobs import BlobStore
from app.config import Settings
from app.errors import Unauthorized


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_sessionmaker(request: Request) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = request.app.state.sessionmaker
    return factory


def get_db(request: Request) -> Iterator[Session]:
    with get_sessionmaker(request)() as session:
        yield session


def get_blobs(request: Request) -> BlobStore:
    store: BlobStore = request.app.state.blobs
    return store


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


def get_principal(request: Request, session: Annotated[Session, Depends(get_db)]) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    secret = bearer_secret(request)
    principal = Principal()
    if secret:
        user, token = authenticate_token(session, secret)
        principal = Principal(user=user, token=token, role=token.role)
    else:
        session_hook = getattr(request.app.state, "session_principal", None)
        if session_hook is not None:
            principal = session_hook(request, session) or principal
    request.state.principal = principal
    request.state.user_name = principal.name
    return principal


def require_user(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    if principal.user is None:
        raise Unauthorized("You must be authenticated to perform this action")
    return principal


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[Session, Depends(get_db)]
BlobsDep = Annotated[BlobStore, Depends(get_blobs)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
UserDep = Annotated[Principal, Depends(require_user)]
