"""Read side of the Hub REST API (hf-protocol.md §4, §5, §9, §12, §15): repo info, search,
tree, paths-info, commits, refs, file downloads and YAML validation.

Revisions and tree paths arrive percent-encoded (`refs%2Fpr%2F1`, `sub%2Fdir`) and uvicorn
decodes them before routing, so every route with a revision re-reads `scope["raw_path"]`
through `app.http` (§4). Each route is registered for models, datasets and spaces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qsl, quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from app.auth.permissions import Principal
from app.blobs import BlobStore
from app.cards.metadata import MAX_CARD_BYTES, CardError, parse_yaml
from app.cards.validate import validate_metadata
from app.config import Settings
from app.deps import BlobsDep, CacheDep, PrincipalDep, SessionDep, SettingsDep
from app.errors import BadRequest, RevisionNotFound
from app.http import (
    encode_cursor,
    next_link,
    offset_cursor,
    page_limit,
    raw_segments,
    read_body,
    repo_id_at,
    split_revision_and_path,
)
from app.hub import downloads, schemas
from app.repos.lastcommit import last_commits
from app.repos.listing import TreeCache, files_of, list_folder, lookup_paths
from app.repos.models import Repo
from app.repos.paths import PLURALS
from app.repos.search import RepoQuery, head_commits, search_repos
from app.repos.service import commit_history, get_commit, get_repo, list_refs, resolve_revision
from app.security import service as security

router = APIRouter(tags=["hub"])

URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
# huggingface.co pages trees by 1,000 (§5.3) but the client takes any size; pages are slices
# of a cached rendering, so larger ones list a 10,000-file repo in one or two requests.
TREE_PAGE = 10_000
TREE_PAGE_EXPANDED = 50  # lastCommit costs a history walk per page: keep pages small
COMMITS_PAGE = 50
COMMITS_PAGE_MAX = 1000
MAX_PATHS_INFO_BODY = 16 * 1024 * 1024  # tens of thousands of paths, as a form
MAX_VALIDATE_BODY = 4 * MAX_CARD_BYTES  # a README as a JSON string (escapes may quadruple it)
LIST_PAGE = 1000
REPO_API = "/api/{plural}/{namespace}/{name}"

Handler = TypeVar("Handler", bound=Callable[..., Any])


def _api_route(suffix: str, methods: tuple[str, ...] = ("GET",)) -> Callable[[Handler], Handler]:
    """Register one handler under /api/models, /api/datasets and /api/spaces."""

    def register(handler: Handler) -> Handler:
        for plural in PLURALS:
            path = f"/api/{plural}{suffix}"
            router.add_api_route(path, handler, methods=list(methods))
        return handler

    return register


def _file_route(kind: str) -> Callable[[Handler], Handler]:
    """Register a download handler under `/{ns}/{name}/{kind}/…` and the dataset/space forms."""

    def register(handler: Handler) -> Handler:
        for prefix in ("/datasets", "/spaces", ""):
            path = f"{prefix}/{{namespace}}/{{name}}/{kind}/{{rest:path}}"
            router.add_api_route(path, handler, methods=["GET"])
            # A route of its own: one route with both methods gets one OpenAPI operation id twice.
            router.add_api_route(path, handler, methods=["HEAD"], include_in_schema=False)
        return handler

    return register


ListParam = Annotated[list[str], Query()]


@dataclass(frozen=True)
class RepoPath:
    """What the raw path names: repo type and id, plus the revision and path after them."""

    repo_type: str
    repo_id: str
    revision: str | None = None
    path: str = ""


def api_target(request: Request, fixed: int) -> RepoPath:
    """For `/api/{plural}/{ns}/{name}/<word>/<rev>[/<path>]`: the segments after `fixed`."""
    segments = raw_segments(request)
    repo_type = PLURALS[segments[1]]
    repo_id = repo_id_at(segments, 2)
    if len(segments) <= fixed:
        return RepoPath(repo_type, repo_id)
    revision, path = split_revision_and_path(segments[fixed:])
    return RepoPath(repo_type, repo_id, revision, path)


def file_target(request: Request) -> RepoPath:
    """For `[/datasets|/spaces]/{ns}/{name}/resolve|raw/<rev>/<path>`."""
    segments = raw_segments(request)
    repo_type = {"datasets": "dataset", "spaces": "space"}.get(segments[0], "model")
    if repo_type != "model":
        segments = segments[1:]
    repo_id = repo_id_at(segments, 0)
    revision, path = split_revision_and_path(segments[3:])
    return RepoPath(repo_type, repo_id, revision, path)


def repo_api_path(repo: Repo, word: str, revision: str, path: str = "") -> str:
    """A percent-encoded API path, used to pin a paginated listing to one commit."""
    plural = repo.type + "s"
    out = f"/api/{plural}/{quote(repo.namespace)}/{quote(repo.name)}/{word}/"
    out += quote(revision, safe="")
    return out + ("/" + quote(path, safe="") if path else "")


# --- repo info and search (§5.1, §5.2) ---------------------------------------------------


@_api_route("/{namespace}/{name}")
@_api_route("/{namespace}/{name}/revision/{rest:path}")
def repo_info(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    cache: CacheDep,
    blobs: bool = False,
    securityStatus: bool = False,
    expand: ListParam = [],  # noqa: B006 - FastAPI copies defaults
) -> Response:
    target = api_target(request, 5)
    repo = get_repo(session, principal, target.repo_type, target.repo_id)
    try:
        sha: str | None = resolve_revision(session, repo, target.revision)
    except RevisionNotFound:
        if target.revision is not None:
            raise
        sha = None  # a repo whose main was deleted still has an info page
    keys = expand or schemas.all_keys(repo.type)
    view = schemas.RepoView(repo, sha)
    if sha is not None and ("siblings" in keys or "usedStorage" in keys):
        tree = get_commit(session, sha).tree_sha
        view.siblings, view.used_storage = _siblings(session, cache, tree, blobs)
    if securityStatus and sha is not None and repo.type == "model":
        files = files_of(cache.get(session, get_commit(session, sha).tree_sha))
        view.security = security.repo_status(session, files)
        keys = [*keys, "securityRepoStatus"]
    return schemas.json_response(schemas.render_repo(view, keys))


def _siblings(session: Session, cache: TreeCache, tree: str, blobs: bool) -> tuple[bytes, int]:
    def render() -> tuple[bytes, int]:
        return schemas.siblings_json(files_of(cache.get(session, tree)), blobs)

    return cache.rendered(("siblings", tree, blobs), render)


@_api_route("")
def list_repos(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    cache: CacheDep,
    search: ListParam = [],  # noqa: B006
    author: str | None = None,
    filter: ListParam = [],  # noqa: B006
    sort: str | None = None,
    direction: int = -1,
    limit: int | None = None,
    full: bool = False,
    cardData: bool = False,
    expand: ListParam = [],  # noqa: B006
    pipeline_tag: str | None = None,
    gated: bool | None = None,
    cursor: str | None = None,
) -> Response:
    repo_type = PLURALS[raw_segments(request)[1]]
    query = RepoQuery(
        repo_type=repo_type,
        search=search,
        author=author,
        filters=filter,
        pipeline_tag=pipeline_tag,
        gated=gated,
        sort=sort,
        direction=direction,
        limit=page_limit(limit, LIST_PAGE, LIST_PAGE),
        cursor=cursor,
    )
    page = search_repos(session, principal, query)
    keys = _list_keys(repo_type, full=full, card_data=cardData, expand=expand)
    body = _repo_objects(session, cache, page.repos, keys)
    headers = {"Link": next_link(request, settings, page.next_cursor)} if page.next_cursor else {}
    return schemas.json_response(body, headers=headers)


def _list_keys(repo_type: str, *, full: bool, card_data: bool, expand: list[str]) -> list[str]:
    if expand:
        return expand
    keys = list(schemas.all_keys(repo_type) if full else schemas.LIST_KEYS)
    if card_data and "cardData" not in keys:
        keys.append("cardData")
    return keys


def _repo_objects(session: Session, cache: TreeCache, repos: list[Repo], keys: list[str]) -> bytes:
    """A page of repo objects; heads and file lists are read for the whole page at once."""
    wants_files = "siblings" in keys or "usedStorage" in keys
    heads = head_commits(session, repos) if wants_files or "sha" in keys else {}
    if wants_files:
        cache.get_many(session, [tree for _, tree in heads.values()])
    out = []
    for repo in repos:
        sha, tree = heads.get(repo.id, (None, None))
        view = schemas.RepoView(repo, sha)
        if wants_files and tree is not None:
            view.siblings, view.used_storage = _siblings(session, cache, tree, False)
        out.append(schemas.render_repo(view, keys))
    return b"[" + b",".join(out) + b"]"


# --- tree, paths-info, commits, refs (§5.3-§5.6) ----------------------------------------


@_api_route("/{namespace}/{name}/tree/{rest:path}")
def list_tree(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    cache: CacheDep,
    recursive: bool = False,
    expand: bool = False,
    limit: int | None = None,
    cursor: str | None = None,
) -> Response:
    target = api_target(request, 5)
    repo = get_repo(session, principal, target.repo_type, target.repo_id)
    sha = resolve_revision(session, repo, target.revision)
    tree = get_commit(session, sha).tree_sha
    size = page_limit(limit, TREE_PAGE_EXPANDED if expand else TREE_PAGE, TREE_PAGE)
    start = offset_cursor(cursor)
    path = target.path.strip("/")

    def render() -> tuple[bytes, bool]:
        entries = list_folder(session, cache, tree, path, recursive=recursive)
        page = entries[start : start + size]
        lasts = last_commits(session, repo.id, sha, page) if expand else {}
        scans = security.file_statuses(session, page) if expand else {}
        body = [
            schemas.entry_json(entry, lasts.get(entry.path), scans.get(entry.path))
            for entry in page
        ]
        return schemas.dumps(body), start + size < len(entries)

    # lastCommit depends on history, not only on the tree: expanded pages are keyed by commit.
    key = ("tree", sha if expand else tree, path, recursive, expand, start, size)
    body, more = cache.rendered(key, render)
    headers = {}
    if more:
        # The next page reads the same commit even if the branch moves meanwhile.
        pinned = repo_api_path(repo, "tree", sha, path)
        headers["Link"] = next_link(request, settings, encode_cursor(start + size), raw_path=pinned)
    return schemas.json_response(body, headers=headers)


@dataclass(frozen=True)
class PathsQuery:
    paths: list[str]
    expand: bool


async def paths_info_body(
    request: Request, principal: PrincipalDep, session: SessionDep
) -> PathsQuery:
    """The client posts a form (`paths=a&paths=b&expand=false`, §5.4); JSON is accepted too.
    The caller and the repo are checked before the body is read, and the body is bounded."""
    target = api_target(request, 5)
    await run_in_threadpool(check_repo, session, principal, target.repo_type, target.repo_id)
    raw = await read_body(request, MAX_PATHS_INFO_BODY)
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            raise BadRequest("paths-info: the body is not valid JSON") from None
        paths = data.get("paths") if isinstance(data, dict) else None
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise BadRequest("paths-info: 'paths' must be a list of strings")
        return PathsQuery(paths, bool(data.get("expand")))
    pairs = parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)
    paths = [value for key, value in pairs if key == "paths"]
    expand = any(key == "expand" and value.lower() in ("1", "true") for key, value in pairs)
    return PathsQuery(paths, expand)


def check_repo(
    session: Session,
    principal: Principal,
    repo_type: str,
    repo_id: str,
    *,
    write: bool = False,
    upload: bool = False,
) -> None:
    """The repo check a route makes before it reads its body; the request's connection then
    goes back to the pool (the session stays usable), so that a slow body does not hold one."""
    try:
        get_repo(session, principal, repo_type, repo_id, write=write, upload=upload)
    finally:
        session.close()


@_api_route("/{namespace}/{name}/paths-info/{rest:path}", methods=("POST",))
def paths_info(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    body: Annotated[PathsQuery, Depends(paths_info_body)],
) -> Response:
    target = api_target(request, 5)
    repo = get_repo(session, principal, target.repo_type, target.repo_id)
    sha = resolve_revision(session, repo, target.revision)
    found = lookup_paths(session, get_commit(session, sha).tree_sha, body.paths)
    entries = [found[p] for p in dict.fromkeys(p.strip("/") for p in body.paths) if p in found]
    lasts = last_commits(session, repo.id, sha, entries) if body.expand else {}
    scans = security.file_statuses(session, entries) if body.expand else {}
    return schemas.json_response(
        [schemas.entry_json(e, lasts.get(e.path), scans.get(e.path)) for e in entries]
    )


@_api_route("/{namespace}/{name}/commits/{rest:path}")
def list_commits(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    limit: int | None = None,
    cursor: str | None = None,
    expand: Annotated[list[str], Query(alias="expand[]")] = [],  # noqa: B006
) -> Response:
    target = api_target(request, 5)
    repo = get_repo(session, principal, target.repo_type, target.repo_id)
    sha = resolve_revision(session, repo, target.revision)
    size = page_limit(limit, COMMITS_PAGE, COMMITS_PAGE_MAX)
    start = offset_cursor(cursor)
    commits, more = commit_history(session, sha, limit=size, offset=start)
    headers = {}
    if more:
        pinned = repo_api_path(repo, "commits", sha)
        headers["Link"] = next_link(request, settings, encode_cursor(start + size), raw_path=pinned)
    formatted = "formatted" in expand
    body = [schemas.commit_json(c, formatted) for c in commits]
    return schemas.json_response(body, headers=headers)


@_api_route("/{namespace}/{name}/refs")
def list_repo_refs(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    include_prs: bool = False,
) -> Response:
    target = api_target(request, 5)
    repo = get_repo(session, principal, target.repo_type, target.repo_id)
    return schemas.json_response(schemas.refs_json(list_refs(session, repo), include_prs))


# --- downloads (§9) ---------------------------------------------------------------------


def _serve(
    request: Request,
    session: Session,
    principal: Principal,
    blobs: BlobStore,
    settings: Settings,
    *,
    raw: bool,
) -> Response:
    target = file_target(request)
    revision = target.revision or "main"
    resolved = downloads.locate(
        session, principal, target.repo_type, target.repo_id, revision, target.path
    )
    response = downloads.file_response(request, blobs, settings, resolved, raw=raw)
    if response.status_code in (200, 206, 302) and downloads.counts_as_download(
        session, resolved, request
    ):
        # After the answer is sent: the client never waits on the write lock for a counter.
        factory = request.app.state.sessionmaker
        response.background = BackgroundTask(downloads.count_download, factory, resolved.repo.id)
    # Give the connection back before the body streams: a multi-GB download must not hold
    # one of the pool's few database connections for minutes.
    session.close()
    return response


@_file_route("resolve")
def resolve_file(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> Response:
    return _serve(request, session, principal, blobs, settings, raw=False)


@_file_route("raw")
def raw_file(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    blobs: BlobsDep,
    settings: SettingsDep,
) -> Response:
    return _serve(request, session, principal, blobs, settings, raw=True)


# --- card metadata (§12) ----------------------------------------------------------------


@router.post("/api/validate-yaml")
async def validate_yaml(request: Request) -> Response:
    """Called before every commit with a README.md; the client reads the JSON before the
    status, so even errors must be JSON: 400 `{"errors":[{"message"}]}` becomes ValueError."""
    body = await read_body(request, MAX_VALIDATE_BODY)
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise BadRequest("validate-yaml: the body is not valid JSON") from None
    content = data.get("content") if isinstance(data, dict) else None
    if not isinstance(content, str):
        raise BadRequest("validate-yaml: 'content' must be the README text")
    repo_type = data.get("repoType") or "model"
    if repo_type not in PLURALS.values():
        raise BadRequest(f"validate-yaml: unknown repoType {repo_type!r}")
    try:
        metadata = await run_in_threadpool(parse_yaml, content)  # bounded, off the event loop
    except CardError as exc:
        return schemas.json_response({"errors": [{"message": str(exc)}]}, status_code=400)
    errors, warnings = validate_metadata(metadata, repo_type)
    answer = {
        "errors": [{"message": message} for message in errors],
        "warnings": [{"message": message} for message in warnings],
    }
    return schemas.json_response(answer, status_code=400 if errors else 200)
