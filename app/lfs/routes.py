"""The git-lfs HTTP API under `/{prefix}{id}.git/info/lfs/` (hf-protocol.md §7.2), for
huggingface_hub's legacy upload path and for git-lfs push/pull through app/git.

- `POST objects/batch`: plans each object (basic PUT, multipart parts, or nothing to send).
- `PUT objects/{oid}`: basic upload; `PUT objects/{oid}/parts/{n}` and `POST objects/{oid}`:
  multipart parts and completion. huggingface_hub sends these three with no Authorization,
  so their URLs are signed by the batch answer (app.lfs.signing).
- `GET objects/{oid}`: download (Authorization from the action's header).
- `POST verify`: the client's check that the upload landed.
- `locks…`: 501, which git-lfs takes as "locking not supported" and stops asking.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse
from starlette.types import Scope

from app.auth.permissions import Principal
from app.blobs import BlobStore
from app.config import Settings
from app.deps import BlobsDep, PrincipalDep, SessionDep, SettingsDep
from app.errors import BadRequest, NotFound, QuotaExceeded, RepoNotFound, Unauthorized
from app.http import base_url, client_ip, raw_segments, repo_id_at
from app.lfs import service, signing
from app.lfs.schemas import (
    LFS_JSON,
    BatchRequest,
    CompletionRequest,
    ObjectSpec,
    VerifyRequest,
    object_error,
)
from app.lfs.streams import Pace, Uploads, consume_in_thread
from app.quotas.service import Upload, check_upload
from app.repos import content, grants
from app.repos.gitobjects import OID_RE
from app.repos.models import Repo
from app.repos.service import get_repo, linked_sizes

router = APIRouter(tags=["lfs"])
Handler = TypeVar("Handler", bound=Callable[..., Any])
REPO_PREFIXES = {"": "model", "/datasets": "dataset", "/spaces": "space"}
OBJECT_PUT = re.compile(r"\.git/info/lfs/objects/[0-9a-f]{64}$")


def is_signed_object_put(scope: Scope) -> bool:
    """A basic-transfer upload: its body streams into the store, which refuses a byte past the
    size signed into the URL, so ATRIUM_MAX_REQUEST_BODY need not bound it. git-lfs knows no
    other transfer, and would otherwise be unable to push an object over that limit."""
    return scope.get("method") == "PUT" and bool(OBJECT_PUT.search(scope.get("path", "")))


LFS_AUTHENTICATE = {"LFS-Authenticate": 'Basic realm="Atrium"'}


def _route(suffix: str, method: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for prefix in REPO_PREFIXES:
            path = f"{prefix}/{{namespace}}/{{name}}.git/info/lfs{suffix}"
            router.add_api_route(path, handler, methods=[method], include_in_schema=False)
        return handler

    return register


@dataclass(frozen=True)
class LfsTarget:
    repo_type: str
    repo_id: str
    prefix: str  # "", "datasets/" or "spaces/"


def lfs_target(request: Request) -> LfsTarget:
    segments = raw_segments(request)
    repo_type = REPO_PREFIXES.get(f"/{segments[0]}", "model")
    prefix = ""
    if repo_type != "model":
        prefix, segments = f"{segments[0]}/", segments[1:]
    repo_id = repo_id_at(segments, 0).removesuffix(".git")
    return LfsTarget(repo_type, repo_id, prefix)


def lfs_repo(session: Session, principal: Principal, target: LfsTarget, *, write: bool) -> Repo:
    """The repo, or 401 + LFS-Authenticate for an anonymous caller: git-lfs asks git's
    credential helper only after a 401 (a 404 would end the push)."""
    try:
        return get_repo(
            session, principal, target.repo_type, target.repo_id, upload=write, content=True
        )
    except (RepoNotFound, Unauthorized):
        if principal.user is None:
            raise Unauthorized(
                "Authentication required for this repository", headers=LFS_AUTHENTICATE
            ) from None
        raise


@dataclass(frozen=True)
class Links:
    """URLs of one batch answer. Actions that git-lfs or huggingface_hub send with their
    own credentials carry the caller's Authorization back in `header`."""

    base: str  # <endpoint>/<prefix><id>.git/info/lfs
    secret: bytes
    grant: str  # `app.repos.grants.Grant`, encoded: checked again when the URL is used
    authorization: str | None

    def signed(self, path: str, purpose: str, fields: dict[str, str]) -> str:
        return f"{self.base}/{path}?{urlencode(signing.sign(self.secret, purpose, fields))}"

    def header(self) -> dict[str, str]:
        return {"Authorization": self.authorization} if self.authorization else {}

    def fields(self, oid: str, size: int, **more: str) -> dict[str, str]:
        return {"r": self.grant, "oid": oid, "size": str(size), **more}


def _links(
    request: Request, settings: Settings, target: LfsTarget, repo: Repo, granted: grants.Grant
) -> Links:
    name = f"{quote(repo.namespace)}/{quote(repo.name)}"
    base = f"{base_url(request, settings)}/{target.prefix}{name}.git/info/lfs"
    return Links(base, settings.secret, granted.encode(), request.headers.get("authorization"))


# --- batch ------------------------------------------------------------------------------


@_route("/objects/batch", "POST")
def batch(
    request: Request,
    body: BatchRequest,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    blobs: BlobsDep,
) -> Response:
    target = lfs_target(request)
    upload = body.operation == "upload"
    repo = lfs_repo(session, principal, target, write=upload)
    if body.hash_algo != "sha256":
        raise BadRequest(f"unsupported hash_algo {body.hash_algo!r}; use sha256")
    linked = linked_sizes(session, repo.id, [o.oid for o in body.objects])
    refusal = _over_quota(session, settings, repo, body.objects, linked) if upload else None
    granted = grants.grant(principal, repo, write=upload)
    session.close()  # S3 calls follow; hold no database connection meanwhile
    links = _links(request, settings, target, repo, granted)
    plan = _plan_upload if upload else _plan_download
    multipart = "multipart" in body.transfers
    objects = [
        object_error(obj.oid, obj.size, 413, refusal)
        if refusal is not None and _to_upload(obj, linked)
        else plan(obj, linked, links, settings, blobs, multipart)
        for obj in body.objects
    ]
    answer = {"transfer": "basic", "objects": objects, "hash_algo": "sha256"}
    return JSONResponse(answer, media_type=LFS_JSON)


def _to_upload(obj: ObjectSpec, linked: dict[str, int]) -> bool:
    return obj.oid not in linked and _invalid(obj) is None


def _over_quota(
    session: Session,
    settings: Settings,
    repo: Repo,
    objects: list[ObjectSpec],
    linked: dict[str, int],
) -> str | None:
    """Why the objects this batch would upload do not fit the namespace's quota, or None.
    Every one of them is then refused (per object, 413) before a byte is sent: git-lfs and
    huggingface_hub (lfs.py, `_upload_lfs_files`) show each object's message and stop."""
    wanted = {obj.oid: obj.size for obj in objects if _to_upload(obj, linked)}
    try:
        check_upload(session, settings, repo.namespace, Upload(lfs=wanted))
    except QuotaExceeded as exc:
        return exc.message
    return None


def _invalid(obj: ObjectSpec) -> dict[str, Any] | None:
    if not OID_RE.match(obj.oid):
        return object_error(obj.oid, obj.size, 422, "oid must be a sha256: 64 lowercase hex")
    if obj.size < 0:
        return object_error(obj.oid, obj.size, 422, "size must not be negative")
    return None


def _plan_upload(
    obj: ObjectSpec,
    linked: dict[str, int],
    links: Links,
    settings: Settings,
    blobs: BlobStore,
    multipart: bool,
) -> dict[str, Any]:
    invalid = _invalid(obj)
    if invalid:
        return invalid
    if obj.oid in linked:
        if linked[obj.oid] != obj.size:
            message = f"this object is stored with size {linked[obj.oid]}, not {obj.size}"
            return object_error(obj.oid, obj.size, 422, message)
        return {"oid": obj.oid, "size": obj.size}  # no actions: nothing to send
    verify = {"href": f"{links.base}/verify", "header": links.header()}
    part_size = _part_size(obj.size, settings, blobs) if multipart else None
    if part_size is None:
        href = links.signed(f"objects/{obj.oid}", "put", links.fields(obj.oid, obj.size))
        upload: dict[str, Any] = {"href": href, "expires_in": signing.UPLOAD_TTL_S}
    else:
        upload = _multipart_action(obj, links, blobs, part_size)
    return {"oid": obj.oid, "size": obj.size, "actions": {"upload": upload, "verify": verify}}


def _part_size(size: int, settings: Settings, blobs: BlobStore) -> int | None:
    """Parts go straight to S3 for anything over one part; through Atrium only when one PUT
    would pass the request body limit (a part then costs a second write on assembly)."""
    if isinstance(blobs, service.DirectPartStore):
        return settings.lfs_part_size if size > settings.lfs_part_size else None
    if size <= settings.max_request_body:
        return None
    return min(settings.lfs_part_size, settings.max_request_body)


def _multipart_action(
    obj: ObjectSpec, links: Links, blobs: BlobStore, part_size: int
) -> dict[str, Any]:
    """huggingface_hub's multipart shape: `chunk_size` plus one numbered URL per part in
    `header`, and `href` the completion URL (lfs.py:284-297)."""
    count = -(-obj.size // part_size)
    upload_id = service.new_upload_id()
    header: dict[str, str] = {"chunk_size": str(part_size)}
    if isinstance(blobs, service.DirectPartStore):
        staging = service.STAGING_PREFIX + upload_id
        s3_id = blobs.create_multipart(staging)
        for n in range(1, count + 1):
            header[str(n)] = blobs.presigned_part_url(staging, s3_id, n, signing.UPLOAD_TTL_S)
        fields = links.fields(obj.oid, obj.size, u=upload_id, n=str(count), s3=s3_id)
    else:
        for n in range(1, count + 1):
            part = {"r": links.grant, "oid": obj.oid, "u": upload_id, "n": str(n)}
            header[str(n)] = links.signed(f"objects/{obj.oid}/parts/{n}", "part", part)
        fields = links.fields(obj.oid, obj.size, u=upload_id, n=str(count), s3="")
    href = links.signed(f"objects/{obj.oid}", "complete", fields)
    return {"href": href, "header": header, "expires_in": signing.UPLOAD_TTL_S}


def _plan_download(
    obj: ObjectSpec,
    linked: dict[str, int],
    links: Links,
    settings: Settings,
    blobs: BlobStore,
    multipart: bool,
) -> dict[str, Any]:
    invalid = _invalid(obj)
    if invalid:
        return invalid
    if linked.get(obj.oid) != obj.size:
        return object_error(obj.oid, obj.size, 404, "Object does not exist in this repository")
    stored = content.Content("lfs", obj.oid, obj.size)
    presigned = (
        content.download_url(blobs, stored)
        if settings.s3_presign_downloads and content.is_stored(blobs, stored)
        else None
    )
    action: dict[str, Any] = (
        {"href": presigned, "expires_in": content.PRESIGN_TTL_S}
        if presigned
        else {"href": f"{links.base}/objects/{obj.oid}", "header": links.header()}
    )
    return {"oid": obj.oid, "size": obj.size, "actions": {"download": action}}


# --- transfers (signed URLs, no Authorization) -------------------------------------------


def _state(request: Request) -> tuple[Settings, sessionmaker[Session], BlobStore]:
    state = request.app.state
    return state.settings, state.sessionmaker, state.blobs


def _uploads(request: Request) -> Uploads:
    """The process's uploads, made on first use from the settings."""
    uploads: Uploads | None = getattr(request.app.state, "uploads", None)
    if uploads is None:
        settings = request.app.state.settings
        pace = Pace(settings.upload_idle_timeout, settings.upload_min_rate)
        uploads = request.app.state.uploads = Uploads(settings.uploads_per_client, pace)
    return uploads


def _grant(request: Request, purpose: str, oid: str, names: tuple[str, ...]) -> dict[str, str]:
    """The signed fields of a transfer URL, and in "r" the id of the repo it writes, once the
    grant it carries still holds (`grants.check`: the repo exists, the token is not revoked)."""
    settings, factory, _ = _state(request)
    query = dict(request.query_params)
    fields = signing.verify(settings.secret, purpose, query, ("r", "oid", *names))
    if fields["oid"] != oid:
        raise BadRequest("this transfer URL was signed for another object")
    with factory() as session:
        repo = grants.check(session, grants.Grant.decode(fields["r"]), write=True)
    return {**fields, "r": str(repo.id)}


@_route("/objects/{oid}", "PUT")
async def upload_object(request: Request, oid: str) -> Response:
    """Basic transfer: the body streams into the store, which checks sha256 and size."""
    grant = await run_in_threadpool(_grant, request, "put", oid, ("size",))
    _, factory, blobs = _state(request)
    repo_id, size = int(grant["r"]), int(grant["size"])
    uploads = _uploads(request)
    with uploads.hold(client_ip(request)):
        await consume_in_thread(
            request.stream(),
            lambda chunks: service.receive_object(factory, blobs, repo_id, oid, size, chunks),
            uploads.pace,
            uploads.limiter,
        )
    return Response(status_code=200)


@_route("/objects/{oid}/parts/{number}", "PUT")
async def upload_part(request: Request, oid: str, number: int) -> Response:
    grant = await run_in_threadpool(_grant, request, "part", oid, ("u", "n"))
    if grant["n"] != str(number):
        raise BadRequest("this part URL was signed for another part")
    _, _, blobs = _state(request)
    upload_id = grant["u"]
    uploads = _uploads(request)
    with uploads.hold(client_ip(request)):
        etag = await consume_in_thread(
            request.stream(),
            lambda chunks: service.receive_part(blobs, upload_id, number, chunks),
            uploads.pace,
            uploads.limiter,
        )
    return Response(status_code=200, headers={"ETag": f'"{etag}"'})


@_route("/objects/{oid}", "POST")
def complete_multipart(request: Request, oid: str, body: CompletionRequest) -> Response:
    """Multipart completion: assemble and verify, then link the object to the repo."""
    grant = _grant(request, "complete", oid, ("size", "u", "n", "s3"))
    _, factory, blobs = _state(request)
    count, size, repo_id = int(grant["n"]), int(grant["size"]), int(grant["r"])
    parts = sorted(body.parts, key=lambda p: p.partNumber)
    if body.oid != oid or [p.partNumber for p in parts] != list(range(1, count + 1)):
        raise BadRequest(f"the completion must list parts 1 to {count} of object {oid}")
    if grant["s3"] and isinstance(blobs, service.DirectPartStore):
        staging = (service.STAGING_PREFIX + grant["u"], grant["s3"])
        etags = [p.etag for p in parts]
        service.complete_direct(factory, blobs, blobs, repo_id, oid, size, staging, etags)
    else:
        service.assemble_parts(factory, blobs, repo_id, oid, size, grant["u"], count)
    return JSONResponse({}, media_type=LFS_JSON)


# --- download, verify, locks --------------------------------------------------------------


@_route("/objects/{oid}", "GET")
def download_object(
    request: Request,
    oid: str,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    blobs: BlobsDep,
) -> Response:
    repo = lfs_repo(session, principal, lfs_target(request), write=False)
    size = linked_sizes(session, repo.id, [oid]).get(oid)
    if size is None:
        raise NotFound("Object does not exist in this repository")
    # git-lfs smudges a file that came only through Xet like any other: rebuilt from xorbs.
    located = content.locate_lfs(blobs, oid, size, content.xet_hash_of(session, oid))
    session.close()
    path = content.local_file(blobs, located)
    if path is not None:
        return FileResponse(path, media_type="application/octet-stream")
    presigned = content.download_url(blobs, located) if settings.s3_presign_downloads else None
    if presigned:
        return RedirectResponse(presigned, status_code=302)
    stream = content.open_content(blobs, located)
    headers = {"Content-Length": str(size)}
    return StreamingResponse(stream, media_type="application/octet-stream", headers=headers)


@_route("/verify", "POST")
def verify_object(
    request: Request, body: VerifyRequest, session: SessionDep, principal: PrincipalDep
) -> Response:
    repo = lfs_repo(session, principal, lfs_target(request), write=False)
    size = linked_sizes(session, repo.id, [body.oid]).get(body.oid)
    if size is None:
        raise NotFound(f"Object {body.oid} was not uploaded to this repository")
    if size != body.size:
        raise BadRequest(f"Object {body.oid} has size {size}, not {body.size}")
    return JSONResponse({}, media_type=LFS_JSON)


def locks_unsupported() -> Response:
    """git-lfs reads 501 as "this server has no locking API" and pushes on without it."""
    message = "Locking is not supported by this server"
    return JSONResponse({"message": message}, status_code=501, media_type=LFS_JSON)


for _suffix, _method in (
    ("/locks", "GET"),
    ("/locks", "POST"),
    ("/locks/verify", "POST"),
    ("/locks/{lock_id}/unlock", "POST"),
):
    _route(_suffix, _method)(locks_unsupported)
