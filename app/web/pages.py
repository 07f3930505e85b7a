"""What every page shares: the Jinja environment, the request's `Page` (database, session,
caller), security headers, and HTML error pages.

Page routes use `PageRoute`, which turns the app's errors into HTML instead of the API's JSON:
a hidden repo gets the very same 404 page as a missing one (ARCHITECTURE.md §6), and a page
that needs a signed-in user sends the browser to /login.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.auth.permissions import Principal
from app.config import Settings
from app.deps import SessionDep, SettingsDep
from app.errors import (
    AtriumError,
    GatedRepo,
    NotFound,
    RepoMoved,
    TooManyRequests,
    Unauthorized,
)
from app.http import moved_location
from app.web import urls
from app.web.session import CSRF_FIELD, WebSession, check_csrf, load_session, save_session

WEB_DIR = Path(__file__).parent
STATIC_DIR = WEB_DIR / "static"
API_PREFIX = "/api/"  # paths the page catch-alls may match but must answer as the API does
# No request may leave the server, and nothing inline runs: cards are user content.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    # Pages carry the visitor's name and CSRF token: no shared cache may keep them.
    "Cache-Control": "no-store",
}


def build_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(WEB_DIR / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filesize=filesize, compact=compact, ago=ago, isodate=isodate)
    env.globals.update(
        repo_url=urls.repo_url,
        tree_url=urls.tree_url,
        blob_url=urls.blob_url,
        resolve_url=urls.resolve_url,
        commits_url=urls.commits_url,
        blame_url=urls.blame_url,
        edit_url=urls.edit_url,
        commit_url=urls.commit_url,
        settings_url=urls.settings_url,
        list_url=urls.list_url,
        collection_url=urls.collection_url,
        static=static_url,
        csrf_field=CSRF_FIELD,
    )
    return env


def templates_of(request: Request) -> Environment:
    """One environment per app, made on first use (it caches compiled templates)."""
    env: Environment | None = getattr(request.app.state, "web_templates", None)
    if env is None:
        env = request.app.state.web_templates = build_templates()
    return env


def static_url(name: str) -> str:
    """`/static/name?v=<content hash>`: browsers may cache it for a year."""
    return f"/static/{name}?v={static_version(name)}"


def static_version(name: str) -> str:
    return _static_hashes().get(name, "0")


@functools.cache
def _static_hashes() -> dict[str, str]:
    """Read once per process: the static files ship with the package and never change."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()[:12]
        for p in STATIC_DIR.iterdir()
        if p.is_file()
    }


@dataclass
class Page:
    """One page request: the database session, the browser session and the caller."""

    request: Request
    db: Session
    settings: Settings
    session: WebSession

    @property
    def principal(self) -> Principal:
        return self.session.principal

    def actor(self) -> Actor:
        """Who acts, for the audit log: the signed-in person, from their address, on the web."""
        return Actor.of(self.request, self.principal, "web")

    def require_user(self) -> Principal:
        if self.session.user is None:
            raise Unauthorized("Sign in to see this page")
        return self.principal

    async def form(self) -> dict[str, str]:
        """The posted form, after its CSRF token was checked."""
        data = await self.request.form()
        fields = {key: value for key, value in data.items() if isinstance(value, str)}
        check_csrf(self.session, fields.get(CSRF_FIELD))
        return fields

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        env = templates_of(self.request)
        html = env.get_template(template).render(
            request=self.request,
            user=self.session.user,
            csrf_token=self.session.csrf,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        save_session(self.session, self.request, response)
        return response

    def redirect(self, url: str) -> RedirectResponse:
        response = RedirectResponse(url, status_code=303)
        save_session(self.session, self.request, response)
        return response


def get_page(request: Request, db: SessionDep, settings: SettingsDep) -> Page:
    page = Page(request, db, settings, load_session(request, settings, db))
    request.state.user_name = page.session.user.name if page.session.user else None
    request.state.web_page = page
    return page


PageDep = Annotated[Page, Depends(get_page)]
Endpoint = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    """An APIRoute whose errors are HTML pages, and whose answers carry the security headers."""

    def get_route_handler(self) -> Endpoint:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except AtriumError as exc:
                if request.url.path.startswith(API_PREFIX):
                    raise  # API callers get the Hub-style JSON error, not a page
                response = error_page(request, exc)
            response.headers.update(SECURITY_HEADERS)
            return response

        return page_handler


def error_page(request: Request, exc: AtriumError) -> Response:
    if isinstance(exc, RepoMoved):
        return RedirectResponse(moved_location(request, exc), status_code=307)
    if isinstance(exc, Unauthorized) and request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)
    page: Page | None = getattr(request.state, "web_page", None)
    context = {"title": _error_title(exc), "message": exc.message, "status": exc.status}
    if isinstance(exc, GatedRepo):
        context.update(title="Access restricted", message=exc.reason, link=exc.page)
    response: Response
    if page is not None:
        response = page.render("error.html", status_code=exc.status, **context)
    else:
        html = templates_of(request).get_template("error.html").render(request=request, **context)
        response = HTMLResponse(html, status_code=exc.status)
    response.headers.update(exc.headers)  # e.g. a 429's Retry-After
    return response


def _error_title(exc: AtriumError) -> str:
    if isinstance(exc, NotFound):
        return "Not found"
    if isinstance(exc, TooManyRequests):
        return "Too many attempts"
    return "Something went wrong"


# --- template filters -----------------------------------------------------------------


def filesize(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("Bytes", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{int(value)} {unit}" if unit == "Bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} Bytes"


def compact(number: int | None) -> str:
    """1234 -> 1.2k, as the Hub shows counts."""
    value = number or 0
    for limit, suffix in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            return f"{value / limit:.1f}".rstrip("0").rstrip(".") + suffix
    return str(value)


def ago(moment: datetime | None) -> str:
    if moment is None:
        return ""
    seconds = int((datetime.now(UTC) - moment.astimezone(UTC)).total_seconds())
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"),
                       (3600, "hour"), (60, "minute")):  # fmt: skip
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def isodate(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else ""
