"""Sign-in and sign-out, access tokens, and creating a repo."""

from __future__ import annotations

import functools
import secrets
from typing import Any

from argon2 import PasswordHasher
from fastapi import APIRouter, Response
from sqlalchemy.orm import Session

from app.audit.service import Actor, record, record_token
from app.auth.accounts import change_password
from app.auth.models import User
from app.auth.permissions import Scope
from app.auth.ratelimit import Limit, count_failure, retry_after, too_many
from app.auth.service import (
    FINE_GRAINED,
    ROLES,
    create_token,
    get_user,
    list_tokens,
    revoke_token,
    user_orgs,
    verify_password,
)
from app.db.engine import write_transaction
from app.deps import BlobsDep
from app.errors import AtriumError, BadRequest, Forbidden, NotFound
from app.http import client_ip
from app.repos.manage import create_repo
from app.repos.paths import REPO_TYPES
from app.web.pages import Page, PageDep, PageRoute
from app.web.session import sign_in, sign_out
from app.web.sso import login_context
from app.web.urls import repo_url, safe_next

router = APIRouter(route_class=PageRoute, include_in_schema=False)

LOGIN_ERROR = "Wrong username or password"
NAME_LENGTH = 96  # the longest user name (auth.service.NAME_PATTERN)


@router.get("/login")
def login_form(page: PageDep, next: str | None = None) -> Response:
    if page.session.user is not None:
        return page.redirect(safe_next(next))
    return page.render("login.html", next=safe_next(next), **login_context(page.settings))


@router.post("/login")
async def login(page: PageDep) -> Response:
    """Refused with 429 once the account or the address failed too often, before the password
    is looked at: a limit that let the right password through would let guessing go on."""
    form = await page.form()
    if not page.settings.password_login:
        raise Forbidden("Password sign-in is switched off here; use single sign-on")
    target = safe_next(form.get("next"))
    name = form.get("username", "").strip()[:NAME_LENGTH]
    limits = _login_limits(page, name)
    wait = retry_after(page.db, limits)
    if wait is not None:
        raise too_many("failed sign-ins for this account or from your address", wait)
    user = _check_password(page.db, name, form.get("password", ""))
    if user is None:
        with write_transaction(page.request.app.state.sessionmaker) as db:
            count_failure(db, limits)
            record(db, Actor(None, client_ip(page.request), "web"), "login.failed", name)
        return page.render(
            "login.html",
            status_code=401,
            next=target,
            error=LOGIN_ERROR,
            username=name,  # typed again only if it was wrong
            **login_context(page.settings),
        )
    sign_in(page.session, user, page.request.app.state.sessionmaker)
    return page.redirect(target)


def _login_limits(page: Page, name: str) -> list[Limit]:
    settings = page.settings
    window = settings.login_window
    return [
        Limit(f"login:{name.lower()}", settings.login_limit_account, window),
        Limit(f"login-ip:{client_ip(page.request)}", settings.login_limit_ip, window),
    ]


def _check_password(db: Session, name: str, password: str) -> User | None:
    try:
        user = get_user(db, name)
    except NotFound:
        # As slow as a real check, so the answer's timing does not tell which names exist.
        verify_password(User(name=name, password_hash=_decoy_hash()), password)
        return None
    if not verify_password(user, password) or user.disabled_at is not None:
        return None
    return user


@functools.cache
def _decoy_hash() -> str:
    return PasswordHasher().hash(secrets.token_urlsafe(16))


@router.post("/logout")
async def logout(page: PageDep) -> Response:
    await page.form()
    sign_out(page.session, page.request.app.state.sessionmaker)
    return page.redirect("/")


# --- tokens ----------------------------------------------------------------------------


@router.get("/settings")
def account_settings(page: PageDep) -> Response:
    """The account in one place: who you are, how you sign in, and the settings pages."""
    principal = page.require_user()
    assert principal.user is not None
    user = principal.user
    orgs = [org for org, _ in user_orgs(page.db, user)]
    tokens = list_tokens(page.db, user)
    return page.render(
        "account.html",
        account=user,
        orgs=orgs,
        token_count=len(tokens),
        sso=bool(user.oidc_subject),
        password_login=page.settings.password_login,
    )


@router.get("/settings/tokens")
def tokens_page(page: PageDep) -> Response:
    return _tokens(page)


def _tokens(page: Page, **context: Any) -> Response:
    principal = page.require_user()
    assert principal.user is not None
    tokens = list_tokens(page.db, principal.user)
    return page.render("tokens.html", tokens=tokens, roles=ROLES, **context)


@router.post("/settings/tokens")
async def new_token(page: PageDep) -> Response:
    form = await page.form()
    principal = page.require_user()
    assert principal.user is not None
    role = form.get("role", "read")
    scopes: list[Scope] = []
    try:
        if role == FINE_GRAINED:
            scopes = [
                Scope.parse(line) for line in form.get("scopes", "").splitlines() if line.strip()
            ]
            if not scopes:
                raise BadRequest("A fine-grained token needs at least one scope")
    except AtriumError as exc:
        return _tokens(page, error=exc.message)
    with write_transaction(page.request.app.state.sessionmaker) as db:
        user = db.get(User, principal.user.id)
        assert user is not None
        issued = create_token(
            db, user, role=role, label=form.get("label", "").strip()[:100], scopes=scopes
        )
        record_token(db, page.actor(), "token.create", issued.token, user.name)
        created = (issued.token.label, issued.secret)
    page.db.rollback()  # ends the read snapshot taken before the write: the list shows the token
    # Shown on this answer only, never stored: a reload (GET) lists it without the secret.
    return _tokens(page, created=created)


@router.post("/settings/tokens/{token_id}/revoke")
async def revoke(page: PageDep, token_id: int) -> Response:
    await page.form()
    principal = page.require_user()
    assert principal.user is not None
    with write_transaction(page.request.app.state.sessionmaker) as db:
        user = db.get(User, principal.user.id)
        assert user is not None
        token = revoke_token(db, user, token_id)
        record_token(db, page.actor(), "token.revoke", token, user.name)
    return page.redirect("/settings/tokens")


# --- new repo --------------------------------------------------------------------------


def _namespaces(page: Page) -> list[str]:
    principal = page.require_user()
    assert principal.user is not None
    orgs = user_orgs(page.db, principal.user)
    writable = ("contributor", "write", "admin")
    return [principal.user.name, *(org.name for org, role in orgs if role in writable)]


@router.get("/new")
def new_repo_form(page: PageDep) -> Response:
    return page.render("new.html", namespaces=_namespaces(page), types=REPO_TYPES, form={})


@router.post("/new")
async def new_repo(page: PageDep, blobs: BlobsDep) -> Response:
    form = await page.form()
    namespaces = _namespaces(page)
    try:
        repo = create_repo(
            page.request.app.state.sessionmaker,
            blobs,
            page.principal,
            form.get("type", "model"),
            form.get("namespace", ""),
            form.get("name", "").strip(),
            private=form.get("visibility") == "private",
            actor=page.actor(),
        )
    except AtriumError as exc:
        return page.render(
            "new.html",
            status_code=exc.status,
            namespaces=namespaces,
            types=REPO_TYPES,
            form=form,
            error=exc.message,
        )
    return page.redirect(repo_url(repo))


# --- password ---------------------------------------------------------------------------


@router.get("/settings/password")
def password_form(page: PageDep) -> Response:
    page.require_user()
    return page.render("password.html", min_length=page.settings.min_password_length)


@router.post("/settings/password")
async def change_password_page(page: PageDep) -> Response:
    """The current password, then the new one twice; every other browser is signed out."""
    form = await page.form()
    principal = page.require_user()
    assert principal.user is not None
    minimum = page.settings.min_password_length
    error = None
    if not verify_password(principal.user, form.get("current", "")):
        error = "The current password is wrong"
    elif form.get("new", "") != form.get("again", ""):
        error = "The two new passwords differ"
    if error is None:
        try:
            with write_transaction(page.request.app.state.sessionmaker) as db:
                user = change_password(db, principal.user.name, form.get("new", ""), minimum)
                record(db, page.actor(), "user.password", user.name)
        except AtriumError as exc:
            error = exc.message
    if error is not None:
        return page.render("password.html", status_code=400, min_length=minimum, error=error)
    page.db.rollback()
    changed = page.db.get(User, principal.user.id)
    assert changed is not None
    sign_in(page.session, changed, page.request.app.state.sessionmaker)  # this browser stays
    return page.render("password.html", min_length=minimum, done=True)
