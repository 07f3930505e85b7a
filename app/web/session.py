"""Browser sessions: a signed cookie naming the user, and the CSRF token every form carries.

The cookie holds `{"u": user id, "p": password fingerprint, "s": session secret, "c": csrf
token}` signed with `settings.secret_key` (itsdangerous, timestamped, so it expires). A
signed-in session is also a row on the server (`BrowserSession`, by the secret's digest):
signing out deletes it, so a copy of the cookie stops working at once. Changing the password
changes the fingerprint, which signs every other session out. Anonymous visitors get a
cookie with a CSRF token only, so the sign-in form is protected too.

CSRF: every form POST carries `csrf_token`, compared in constant time with the cookie's.
SameSite=Lax already keeps the cookie off cross-site POSTs in current browsers; the token is
the defence that does not depend on the browser (or on a sibling subdomain being honest).
The API accepts this cookie as well (`app.state.session_principal`), but only for safe
methods unless the request also sends the token in `X-CSRF-Token` (what the inference
widget's fetch does): another site can make a browser send the cookie, never that header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from app.auth.models import BrowserSession, User
from app.auth.permissions import Principal
from app.config import Settings
from app.db.base import utcnow
from app.db.engine import write_transaction
from app.errors import Forbidden

COOKIE_NAME = "atrium_session"
SESSION_MAX_AGE_S = 14 * 24 * 3600  # a signed-in browser stays signed in two weeks
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class WebSession:
    """The decoded cookie: always a CSRF token, a user once signed in."""

    csrf: str
    user: User | None = None
    secret: str | None = None  # the server-side session's, once signed in
    dirty: bool = False  # set a new cookie on the response

    @property
    def principal(self) -> Principal:
        # A person at the browser acts with their full rights (auth/permissions.py).
        return Principal(user=self.user, role="write") if self.user else Principal()


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret, salt="atrium.web.session")


def password_fingerprint(user: User) -> str:
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def read_cookie(request: Request, settings: Settings) -> dict[str, Any] | None:
    raw = request.cookies.get(COOKIE_NAME)
    if not raw:
        return None
    try:
        data = _serializer(settings).loads(raw, max_age=SESSION_MAX_AGE_S)
    except BadSignature:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("c"), str) else None


def load_session(request: Request, settings: Settings, db: Session) -> WebSession:
    """The caller's session; a missing, forged, expired or outdated cookie starts a new
    anonymous one (marked dirty so the response sets it)."""
    return _session_of(read_cookie(request, settings), db)


def _session_of(data: dict[str, Any] | None, db: Session) -> WebSession:
    if data is None:
        return WebSession(csrf=secrets.token_urlsafe(32), dirty=True)
    session = WebSession(csrf=data["c"])
    user_id, secret = data.get("u"), data.get("s")
    if isinstance(user_id, int) and isinstance(secret, str):
        user = db.get(User, user_id)
        if (
            user is not None
            and user.disabled_at is None
            and hmac.compare_digest(data.get("p", ""), password_fingerprint(user))
            and _live(db, secret, user.id)
        ):
            session.user, session.secret = user, secret
    return session


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _live(db: Session, secret: str, user_id: int) -> bool:
    row = db.get(BrowserSession, _digest(secret))
    return row is not None and row.user_id == user_id and row.expires_at > utcnow()


def sign_in(session: WebSession, user: User, factory: sessionmaker[Session]) -> None:
    """A new server-side session, and a new CSRF token: one planted before sign-in is
    worthless after. The user's expired sessions are cleared on the way."""
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    with write_transaction(factory) as db:
        db.execute(
            delete(BrowserSession).where(
                BrowserSession.user_id == user.id, BrowserSession.expires_at <= now
            )
        )
        expires = now + timedelta(seconds=SESSION_MAX_AGE_S)
        db.add(BrowserSession(digest=_digest(secret), user_id=user.id, expires_at=expires))
    session.user, session.secret = user, secret
    session.csrf = secrets.token_urlsafe(32)
    session.dirty = True


def sign_out(session: WebSession, factory: sessionmaker[Session]) -> None:
    """Ends the session on the server: every copy of its cookie is anonymous from now on."""
    if session.secret is not None:
        with write_transaction(factory) as db:
            db.execute(
                delete(BrowserSession).where(BrowserSession.digest == _digest(session.secret))
            )
    session.user = session.secret = None
    session.csrf = secrets.token_urlsafe(32)
    session.dirty = True


def save_session(session: WebSession, request: Request, response: Response) -> None:
    if not session.dirty:
        return
    settings: Settings = request.app.state.settings
    data: dict[str, Any] = {"c": session.csrf}
    if session.user is not None and session.secret is not None:
        data.update(u=session.user.id, p=password_fingerprint(session.user), s=session.secret)
    response.set_cookie(
        COOKIE_NAME,
        _serializer(settings).dumps(data),
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="lax",
        secure=_is_https(request, settings),
        path="/",
    )


def _is_https(request: Request, settings: Settings) -> bool:
    if settings.public_url:
        return settings.public_url.startswith("https://")
    return request.url.scheme == "https"


def check_csrf(session: WebSession, submitted: str | None) -> None:
    if not submitted or not hmac.compare_digest(submitted, session.csrf):
        raise Forbidden("The form expired or did not come from this site; reload and retry")


def session_principal(request: Request, db: Session) -> Principal | None:
    """`app.state.session_principal` for app/deps.py: the API's caller from the web cookie.
    Unsafe methods need the CSRF token in a header; without it the caller is anonymous."""
    settings: Settings = request.app.state.settings
    data = read_cookie(request, settings)
    if data is None:
        return None
    if request.method not in SAFE_METHODS:
        header = request.headers.get(CSRF_HEADER, "")
        if not header or not hmac.compare_digest(header, data["c"]):
            return None
    session = _session_of(data, db)
    return session.principal if session.user else None
