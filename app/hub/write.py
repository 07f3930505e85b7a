"""Repo management routes of the Hub API (hf-protocol.md §3): create, delete, move, settings,
branches, tags and super-squash. Commits and preupload are in `app.hub.commit_write`.

Every route that names a revision or ref re-reads the raw path (`app.http`), because
huggingface_hub sends them as one percent-encoded segment (`feature%2Fx`, §4).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.auth.permissions import Principal
from app.db.engine import write_transaction
from app.deps import BlobsDep, FactoryDep, PrincipalDep, SessionDep, SettingsDep, UserDep
from app.errors import BadRequest, Conflict
from app.gating import service as gating
from app.http import (
    base_url,
    encode_cursor,
    json_object,
    next_link,
    offset_cursor,
    page_limit,
)
from app.hub.read import PLURALS, URL_PREFIXES, RepoPath, api_target
from app.repos import largefiles, manage
from app.repos.commits import Author
from app.repos.models import Repo
from app.repos.paths import validate_branch, validate_repo_type
from app.repos.service import HEADS, TAGS, get_ref, get_repo, resolve_revision

router = APIRouter(tags=["hub"])
Handler = TypeVar("Handler", bound=Callable[..., Any])


def api_route(
    target: APIRouter, suffix: str, methods: tuple[str, ...]
) -> Callable[[Handler], Handler]:
    """Register one handler under /api/models, /api/datasets and /api/spaces of target."""

    def register(handler: Handler) -> Handler:
        for plural in PLURALS:
            target.add_api_route(f"/api/{plural}{suffix}", handler, methods=list(methods))
        return handler

    return register


def repo_url(request: Request, repo_type: str, repo_id: str) -> str:
    """`<endpoint>/<prefix><id>`: what create_repo returns and commit URLs start with."""
    return f"{base_url(request, request.app.state.settings)}/{URL_PREFIXES[repo_type]}{repo_id}"


BodyDep = Annotated[dict[str, Any], Depends(json_object)]


def _private_flag(body: RepoBody | SettingsBody | DuplicateBody) -> bool | None:
    """2.4.0 sends `visibility`; older clients `private: bool` (hf-protocol.md §3)."""
    if body.visibility is not None:
        if body.visibility not in ("public", "private", "protected"):
            raise BadRequest(f"invalid visibility {body.visibility!r}; use public or private")
        return body.visibility != "public"
    return body.private


# --- repos ------------------------------------------------------------------------------


class RepoBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    organization: str | None = None
    type: str | None = None
    private: bool | None = None
    visibility: str | None = None
    sdk: str | None = None  # Spaces

    def split(self, principal: Principal) -> tuple[str, str]:
        """(namespace, name); older clients put `ns/name` in name."""
        namespace, slash, name = self.name.rpartition("/")
        if slash and self.organization and namespace != self.organization:
            raise BadRequest("'name' and 'organization' name different namespaces")
        namespace = namespace or self.organization or principal.name or ""
        return namespace, name


@router.post("/api/repos/create")
def create_repo(
    request: Request, body: RepoBody, principal: UserDep, factory: FactoryDep, blobs: BlobsDep
) -> Response:
    """A 409 carries the repo URL: `create_repo(exist_ok=True)` reads it (§0 rule 10)."""
    repo_type = validate_repo_type(body.type)
    namespace, name = body.split(principal)
    url = repo_url(request, repo_type, f"{namespace}/{name}")
    try:
        manage.create_repo(
            factory,
            blobs,
            principal,
            repo_type,
            namespace,
            name,
            private=bool(_private_flag(body)),
            sdk=body.sdk,
            actor=Actor.of(request, principal, "api"),
        )
    except Conflict as exc:
        headers = {"X-Error-Message": exc.message}
        return JSONResponse({"error": exc.message, "url": url}, status_code=409, headers=headers)
    return JSONResponse({"url": url, "name": f"{namespace}/{name}"})


@router.delete("/api/repos/delete")
def delete_repo(
    request: Request, body: RepoBody, principal: PrincipalDep, factory: FactoryDep
) -> Response:
    namespace, name = body.split(principal)
    with write_transaction(factory) as session:
        repo = get_repo(session, principal, body.type or "model", f"{namespace}/{name}", write=True)
        actor = Actor.of(request, principal, "api")
        record(session, actor, "repo.delete", repo.repo_id, type=repo.type)
        manage.delete_repo(session, repo, actor)
    return JSONResponse({})


class MoveBody(BaseModel):
    fromRepo: str
    toRepo: str
    type: str | None = None


@router.post("/api/repos/move")
def move_repo(
    request: Request, body: MoveBody, principal: PrincipalDep, factory: FactoryDep
) -> Response:
    try:
        with write_transaction(factory) as session:
            repo = get_repo(session, principal, body.type or "model", body.fromRepo, write=True)
            actor = Actor.of(request, principal, "api")
            record(session, actor, "repo.move", repo.repo_id, type=repo.type, to=body.toRepo)
            manage.move_repo(session, principal, repo, body.toRepo)
    except IntegrityError:
        raise Conflict(f"A repo named {body.toRepo} already exists") from None
    return JSONResponse({})


class DuplicateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    repository: str = Field(min_length=3, max_length=200)
    private: bool | None = None
    visibility: str | None = None


@api_route(router, "/{namespace}/{name}/duplicate", ("POST",))
def duplicate_repo(
    request: Request,
    body: DuplicateBody,
    principal: UserDep,
    factory: FactoryDep,
    settings: SettingsDep,
) -> Response:
    """`HfApi.duplicate_repo`: the copy shares the source's objects, so its files are there at
    once (`filesCopyPending` false); 409 when the new name is taken, with its URL."""
    target = api_target(request, 5)
    namespace, slash, name = body.repository.partition("/")
    if not slash or not namespace or "/" in name:
        raise BadRequest(f"invalid repo id {body.repository!r}; use namespace/name")
    with factory() as session:
        source = get_repo(session, principal, target.repo_type, target.repo_id, content=True)
    url = repo_url(request, source.type, body.repository)
    try:
        manage.duplicate_repo(
            factory,
            settings,
            principal,
            source.id,
            namespace,
            name,
            private=_private_flag(body),
            actor=Actor.of(request, principal, "api"),
        )
    except Conflict as exc:
        headers = {"X-Error-Message": exc.message}
        return JSONResponse({"error": exc.message, "url": url}, status_code=409, headers=headers)
    return JSONResponse({"url": url, "filesCopyPending": False})


# --- large files ------------------------------------------------------------------------


LFS_FILES_PAGE = 1000


@api_route(router, "/{namespace}/{name}/lfs-files", ("GET",))
def list_lfs_files(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    settings: SettingsDep,
    limit: int | None = None,
    cursor: str | None = None,
) -> Response:
    """`HfApi.list_lfs_files`: the repo's large objects, for those who may write it."""
    target = api_target(request, 5)
    repo = get_repo(session, principal, target.repo_type, target.repo_id, write=True)
    size = page_limit(limit, LFS_FILES_PAGE, LFS_FILES_PAGE)
    start = offset_cursor(cursor)
    files = largefiles.list_large_files(session, repo)
    headers = {}
    if start + size < len(files):
        headers["Link"] = next_link(request, settings, encode_cursor(start + size))
    page = list(largefiles.describe(files[start : start + size]))
    return JSONResponse(page, headers=headers)


class LfsDeletions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sha: list[Annotated[str, Field(pattern="^[0-9a-f]{64}$")]] = Field(max_length=1000)
    rewriteHistory: bool = True


class LfsBatchBody(BaseModel):
    deletions: LfsDeletions


@api_route(router, "/{namespace}/{name}/lfs-files/batch", ("POST",))
def delete_lfs_files(
    request: Request,
    body: LfsBatchBody,
    principal: PrincipalDep,
    factory: FactoryDep,
    blobs: BlobsDep,
) -> Response:
    """`HfApi.permanently_delete_lfs_files`: the history of every ref is rewritten without
    the objects (`app.repos.largefiles`); keeping the pointers while deleting their content
    (`rewriteHistory: false`) would leave files that cannot be read, which Atrium refuses."""
    target = api_target(request, 6)
    with factory() as session:
        repo = get_repo(session, principal, target.repo_type, target.repo_id, write=True)
    if not body.deletions.rewriteHistory:
        raise BadRequest(
            "Atrium deletes large files by rewriting the history that points at them; "
            "send rewriteHistory: true (the client's default)"
        )
    actor = Actor.of(request, principal, "api")
    deleted = largefiles.delete_large_files(
        factory, blobs, repo.id, body.deletions.sha, actor=actor
    )
    return JSONResponse({"deleted": deleted})


class SettingsBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    private: bool | None = None
    visibility: str | None = None
    gated: str | bool | None = None


@api_route(router, "/{namespace}/{name}/settings", ("PUT",))
def update_settings(
    request: Request, body: SettingsBody, principal: PrincipalDep, factory: FactoryDep
) -> Response:
    target = api_target(request, 5)
    with write_transaction(factory) as session:
        repo = get_repo(session, principal, target.repo_type, target.repo_id, write=True)
        private = _private_flag(body)
        if private is not None and private != repo.private:
            actor = Actor.of(request, principal, "api")
            record(session, actor, "repo.visibility", repo.repo_id, type=repo.type, private=private)
        manage.update_settings(repo, private=private)
        if body.gated is not None:
            gating.set_mode(session, repo, body.gated, Actor.of(request, principal, "api"))
    return JSONResponse({})


# --- branches and tags ------------------------------------------------------------------


def ref_argument(target: RepoPath) -> str:
    """The branch, tag or revision after the route word; an unencoded `/` is kept in it."""
    if target.revision is None:
        raise BadRequest("a branch, tag or revision is required in the path")
    return f"{target.revision}/{target.path}" if target.path else target.revision


def _writable(
    session: Session, principal: Principal, request: Request, *, with_ref: bool = True
) -> tuple[Repo, str]:
    """The repo the caller may write, and the ref argument of the path when it has one."""
    target = api_target(request, 5)
    repo = get_repo(session, principal, target.repo_type, target.repo_id, write=True)
    return repo, ref_argument(target) if with_ref else ""


@api_route(router, "/{namespace}/{name}/branch/{rest:path}", ("POST",))
def create_branch(
    request: Request, body: BodyDep, principal: PrincipalDep, factory: FactoryDep
) -> Response:
    with write_transaction(factory) as session:
        repo, branch = _writable(session, principal, request)
        validate_branch(branch)
        start = resolve_revision(session, repo, _optional_str(body, "startingPoint"))
        manage.create_ref(session, repo, HEADS + branch, start, Actor.of(request, principal, "api"))
    return JSONResponse({})


@api_route(router, "/{namespace}/{name}/branch/{rest:path}", ("DELETE",))
def delete_branch(request: Request, principal: PrincipalDep, factory: FactoryDep) -> Response:
    with write_transaction(factory) as session:
        repo, branch = _writable(session, principal, request)
        manage.delete_ref(session, repo, HEADS + branch, Actor.of(request, principal, "api"))
    return JSONResponse({})


@api_route(router, "/{namespace}/{name}/tag/{rest:path}", ("POST",))
def create_tag(
    request: Request, body: BodyDep, principal: PrincipalDep, factory: FactoryDep
) -> Response:
    """The target revision is in the path and the tag name in the body (§3). Tags are
    lightweight (a ref to the commit): `message` is accepted and not stored."""
    tag = _optional_str(body, "tag")
    if not tag:
        raise BadRequest("'tag' is required: the name of the tag to create")
    with write_transaction(factory) as session:
        repo, revision = _writable(session, principal, request)
        sha = resolve_revision(session, repo, revision)  # the revision first, as the Hub
        validate_branch(tag)
        manage.create_ref(session, repo, TAGS + tag, sha, Actor.of(request, principal, "api"))
    return JSONResponse({})


@api_route(router, "/{namespace}/{name}/tag/{rest:path}", ("DELETE",))
def delete_tag(request: Request, principal: PrincipalDep, factory: FactoryDep) -> Response:
    with write_transaction(factory) as session:
        repo, tag = _writable(session, principal, request)
        manage.delete_ref(session, repo, TAGS + tag, Actor.of(request, principal, "api"))
    return JSONResponse({})


@api_route(router, "/{namespace}/{name}/super-squash/{rest:path}", ("POST",))
def super_squash(
    request: Request,
    body: BodyDep,
    principal: PrincipalDep,
    factory: FactoryDep,
    blobs: BlobsDep,
) -> Response:
    with factory() as session:
        repo, branch = _writable(session, principal, request)
        if branch.startswith(TAGS) or (
            get_ref(session, repo, HEADS + branch) is None and get_ref(session, repo, TAGS + branch)
        ):
            raise BadRequest(f"{branch!r} is a tag; only branches can be squashed")
    assert principal.user is not None
    message = _optional_str(body, "message") or "Super-squash branch using huggingface_hub"
    author, actor = Author.of(principal.user), Actor.of(request, principal, "api")
    sha = manage.squash_branch(factory, blobs, repo.id, branch, author, message, actor)
    return JSONResponse({"commitOid": sha})


def _optional_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{key!r} must be a string")
    return value
