"""Single sign-on pages: `/login/sso` sends the browser to the OpenID provider, which sends
it back to `/login/sso/callback`; the state, nonce and PKCE verifier of the attempt travel in
a signed cookie that lives ten minutes and only on those two paths (app.auth.oidc does the
protocol)."""

from __future__ import annotations

import hmac
import json
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from app.audit.service import Actor, record
from app.auth import oidc
from app.config import Settings
from app.db.engine import write_transaction
from app.errors import AtriumError, NotFound
from app.http import base_url
from app.web.pages import Page, PageDep, PageRoute
from app.web.session import sign_in
from app.web.urls import safe_next

router = APIRouter(route_class=PageRoute, include_in_schema=False)
ATTEMPT_COOKIE = "atrium_sso"
ATTEMPT_MAX_AGE_S = 600
CALLBACK = "/login/sso/callback"


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.secret, salt="atrium.web.sso")


def _redirect_uri(page: Page) -> str:
    return base_url(page.request, page.settings) + CALLBACK


def _configured(page: Page) -> None:
    if not oidc.configured(page.settings):
        raise NotFound("Single sign-on is not configured")


@router.get("/login/sso")
def sso_start(page: PageDep, next: str | None = None) -> Response:
    _configured(page)
    url, attempt = oidc.start(page.settings, _redirect_uri(page), safe_next(next))
    response = page.redirect(url)
    response.set_cookie(
        ATTEMPT_COOKIE,
        _serializer(page.settings).dumps(json.dumps(asdict(attempt))),
        max_age=ATTEMPT_MAX_AGE_S,
        path="/login/sso",
        httponly=True,
        samesite="lax",  # the provider's redirect back is a top-level GET
        secure=page.request.url.scheme == "https",
    )
    return response


def _attempt(page: Page) -> oidc.Attempt | None:
    raw = page.request.cookies.get(ATTEMPT_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(_serializer(page.settings).loads(raw, max_age=ATTEMPT_MAX_AGE_S))
        return oidc.Attempt(**data)
    except (BadSignature, ValueError, TypeError):
        return None


@router.get(CALLBACK)
def sso_callback(
    page: PageDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
    error_description: str | None = None,
) -> Response:
    _configured(page)
    attempt = _attempt(page)
    failure = None
    if error:
        failure = f"The single sign-on provider said: {error_description or error}"
    elif attempt is None or not state or not hmac.compare_digest(state, attempt.state):
        failure = "This sign-in expired or did not start here; sign in again"
    elif not code:
        failure = "The single sign-on provider sent no authorization code"
    if failure is None and attempt is not None and code:
        try:
            claims = oidc.finish(page.settings, code, _redirect_uri(page), attempt)
            with write_transaction(page.request.app.state.sessionmaker) as db:
                user = oidc.account(db, page.settings, claims)
                record(db, Actor(user.name, None, "web"), "login.sso", user.name)
            sign_in(page.session, user, page.request.app.state.sessionmaker)
            done = page.redirect(attempt.next)
            done.delete_cookie(ATTEMPT_COOKIE, path="/login/sso")
            return done
        except AtriumError as exc:
            failure = exc.message
    response = page.render(
        "login.html", status_code=401, next="/", error=failure, **login_context(page.settings)
    )
    response.delete_cookie(ATTEMPT_COOKIE, path="/login/sso")
    return response


def login_context(settings: Settings) -> dict[str, Any]:
    """What the sign-in page shows: the SSO button, the password form."""
    return {
        "sso": settings.oidc_button if oidc.configured(settings) else None,
        "password_login": settings.password_login,
    }
