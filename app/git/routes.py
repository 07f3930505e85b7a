"""Git smart HTTP: `git clone/fetch/push http://host/[datasets/|spaces/]<ns>/<name>[.git]`.

Three routes per repo type, as `git http-backend` serves them:
`GET …/info/refs?service=git-upload-pack|git-receive-pack`, `POST …/git-upload-pack` and
`POST …/git-receive-pack`.

Errors are plain text, because git prints a text/plain error body to the user as `remote: …`
(remote-curl.c, show_http_message). A caller who may not read (or, for receive-pack, may not
write) a repo and sent no credentials gets 401 with `WWW-Authenticate: Basic`, so that git asks
for a username and password (the token); with credentials, a hidden repo is 404 as everywhere
else (ARCHITECTURE.md §6).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import IO

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.audit.service import Actor
from app.auth.permissions import Principal, can_discuss, can_read, require_write
from app.deps import get_blobs, get_principal, get_sessionmaker, get_settings
from app.discussions import service as discussions
from app.errors import AtriumError, BadRequest, RepoMoved, RepoNotFound, Unauthorized
from app.gating import service as gating
from app.git.cache import ReplyRecorder, reply_key
from app.git.service import (
    RECEIVE_PACK,
    SERVICES,
    UPLOAD_PACK,
    PushTarget,
    advertise,
    advertised_refs,
    reachable_refs,
    serve,
    wanted_objects,
)
from app.git.store import AtriumGitRepo
from app.git.wire import spool_body, stream_reply
from app.http import moved_location
from app.repos.history import known_commits
from app.repos.models import Repo
from app.repos.service import find_repo, moved_from

router = APIRouter(tags=["git"], include_in_schema=False)

REPO_PREFIXES = {"": "model", "/datasets": "dataset", "/spaces": "space"}
CHALLENGE = {"WWW-Authenticate": 'Basic realm="Atrium", charset="UTF-8"'}
NO_CACHE = {"Cache-Control": "no-cache, max-age=0, must-revalidate", "Pragma": "no-cache"}


@dataclass(frozen=True)
class GitRepo:
    """The repo a git request is about, with the refs it will see for its whole duration."""

    repo_id: int
    refs: dict[str, str]
    wants_blobs: bool = False  # a partial clone fetching the files it lacks

    def view(self, request: Request) -> AtriumGitRepo:
        factory = get_sessionmaker(request)

        def ours(sha: str) -> bool:
            with factory() as session:
                return bool(known_commits(session, self.repo_id, [sha]))

        blobs = get_blobs(request)
        return AtriumGitRepo(blobs, self.refs, wants_blobs=self.wants_blobs, ours=ours)

    def with_wants(self, request: Request, wants: set[str]) -> GitRepo:
        """This repo, with hidden refs for wanted objects its history reaches."""
        if wants <= set(self.refs.values()):
            return self
        with get_sessionmaker(request)() as session:
            refs, blobs = reachable_refs(session, self.repo_id, self.refs, wants)
        return GitRepo(self.repo_id, refs, blobs)


def open_repo(
    request: Request, repo_type: str, namespace: str, name: str, *, write: bool
) -> GitRepo:
    """Authorize the caller for reading (or writing) the repo and snapshot its refs."""
    name = name.removesuffix(".git")
    with get_sessionmaker(request)() as session:
        principal = get_principal(request, session)
        repo = find_repo(session, repo_type, f"{namespace}/{name}")
        if repo is None:
            moved_from(session, principal, repo_type, f"{namespace}/{name}")
        key = (repo.type, repo.repo_id) if repo is not None else None
        if repo is None or not can_read(session, principal, repo.namespace, repo.private, key):
            _challenge(principal)
            raise RepoNotFound(f"Repository not found: {namespace}/{name}")
        if write:
            _challenge(principal)
            # Writers push anywhere; those who may open pull requests, to their own (checked
            # per ref by `may_push`, app.discussions.service.require_push).
            if not can_discuss(session, principal, repo.namespace, repo.private, key):
                require_write(session, principal, repo.namespace, key)
            gating.require_access(session, principal, repo)
        elif not gating.has_access(session, principal, repo):
            # The refs of a gated repo are metadata, but git asks for them only to fetch.
            _challenge(principal)
            gating.require_access(session, principal, repo)
        request.state.repo_id = repo.repo_id
        return GitRepo(repo.id, advertised_refs(session, repo))


async def _open(
    request: Request, repo_type: str, namespace: str, name: str, service: str
) -> GitRepo:
    write = service == RECEIVE_PACK
    return await run_in_threadpool(open_repo, request, repo_type, namespace, name, write=write)


def _challenge(principal: Principal) -> None:
    if principal.user is None:
        raise Unauthorized(
            "Authentication required: use a token as the password", headers=CHALLENGE
        )


def git_error(exc: AtriumError, request: Request) -> Response:
    headers = {**exc.headers, **NO_CACHE}
    if isinstance(exc, RepoMoved):  # git follows it for info/refs, then uses the new URL
        headers["Location"] = moved_location(request, exc)
    return PlainTextResponse(exc.message + "\n", status_code=exc.status, headers=headers)


def _service(value: str | None) -> str:
    if value not in SERVICES:
        raise BadRequest("Only the smart HTTP protocol is served; use git 1.6.6 or newer")
    return value


def _info_refs(repo_type: str) -> Callable[..., Awaitable[Response]]:
    async def info_refs(
        request: Request, namespace: str, name: str, service: str | None = None
    ) -> Response:
        try:
            service = _service(service)
            repo = await _open(request, repo_type, namespace, name, service)
        except AtriumError as exc:
            return git_error(exc, request)
        return StreamingResponse(
            stream_reply(advertise(service, repo.view(request))),
            media_type=f"application/x-{service}-advertisement",
            headers=NO_CACHE,
        )

    return info_refs


def _rpc(repo_type: str, service: str) -> Callable[..., Awaitable[Response]]:
    async def rpc(request: Request, namespace: str, name: str) -> Response:
        try:
            if request.headers.get("content-type") != f"application/x-{service}-request":
                raise BadRequest(f"Content-Type must be application/x-{service}-request")
            repo = await _open(request, repo_type, namespace, name, service)
            body = await spool_body(request, get_settings(request).max_request_body)
        except AtriumError as exc:
            return git_error(exc, request)
        if service == RECEIVE_PACK:
            return _receive_pack(request, repo, body)
        return await _upload_pack(request, repo, body)

    return rpc


def _result(service: str, content: Iterator[bytes] | AsyncIterator[bytes]) -> Response:
    media_type = f"application/x-{service}-result"
    return StreamingResponse(content, media_type=media_type, headers=NO_CACHE)


def _receive_pack(request: Request, repo: GitRepo, body: IO[bytes]) -> Response:
    settings = request.app.state.settings
    actor = Actor.of(request, request.state.principal, "git")  # set by open_repo
    factory, blobs = get_sessionmaker(request), get_blobs(request)
    principal = request.state.principal

    def may_push(session: Session, ref: str) -> None:
        fresh = session.get(Repo, repo.repo_id)
        if fresh is None:
            raise RepoNotFound("The repository was deleted while pushing")
        discussions.require_push(session, principal, fresh, ref)

    target = PushTarget(factory, blobs, repo.repo_id, settings, actor, may_push)
    return _result(
        RECEIVE_PACK, stream_reply(serve(RECEIVE_PACK, repo.view(request), body, target))
    )


async def _upload_pack(request: Request, repo: GitRepo, body: IO[bytes]) -> Response:
    """A fetch or clone, replayed from the reply cache when the same request already met
    the same refs (app.git.cache)."""
    blobs = get_blobs(request)
    repo = await run_in_threadpool(repo.with_wants, request, wanted_objects(body))
    key = reply_key(repo.refs, repo.wants_blobs, body)
    if key is not None and await run_in_threadpool(blobs.size, key) is not None:
        body.close()
        return _result(UPLOAD_PACK, blobs.open(key))
    recorder = ReplyRecorder(blobs, key) if key is not None else None
    work = serve(UPLOAD_PACK, repo.view(request), body, recorder=recorder)
    return _result(UPLOAD_PACK, stream_reply(work))


def _register() -> None:
    for prefix, repo_type in REPO_PREFIXES.items():
        base = prefix + "/{namespace}/{name}"
        router.add_api_route(base + "/info/refs", _info_refs(repo_type), methods=["GET"])
        for service in (UPLOAD_PACK, RECEIVE_PACK):
            router.add_api_route(f"{base}/{service}", _rpc(repo_type, service), methods=["POST"])


_register()
