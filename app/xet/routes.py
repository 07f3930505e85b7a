"""Xet routes (xet-protocol.md §3, §4): the hub's token endpoints and the CAS server.

The CAS is mounted under `/xet` of this app, and that base is the `casUrl` handed out with each
token (the client appends `/v1/...` itself). CAS routes authenticate with the short-lived token
from `Authorization: Bearer`, never with a hub token. Optional routes this server does not offer
(`/v1/xorb-grants`, `/v2/file-chunk-hashes`) answer 404, which makes the client use the
standard ones.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from app.blobs import BlobStore
from app.blobs.keys import xorb_key
from app.config import Settings
from app.deps import BlobsDep, PrincipalDep, SessionDep, SettingsDep
from app.errors import BadRequest, NotFound
from app.http import base_url, read_body
from app.quotas.service import RepoQuota
from app.repos import grants
from app.repos.models import LfsObject, RepoLfsObject
from app.repos.paths import PLURALS
from app.repos.service import get_repo, resolve_revision
from app.xet import hashing, tokens
from app.xet.cas import load_xorbs, parse_hash, register_shard, store_xorb
from app.xet.models import XetDedupChunk
from app.xet.progress import settle_or_stream
from app.xet.reconstruction import (
    Span,
    load_recipe,
    merged_ranges,
    parse_range_header,
    slice_range,
    term_json,
)
from app.xet.shard import MAX_SHARD_BODY, build_dedup_answer
from app.xet.xorb import MAX_XORB_BODY

router = APIRouter()
CAS_PREFIX = "/xet"
DEDUP_KEY_EXPIRY_S = 7 * 24 * 3600
DEDUP_MAX_XORBS = 64  # about 4 GB of a file per answer (~3 MB); later eligible chunks find more


def cas_url(request: Request, settings: Settings) -> str:
    """The base the client appends `/v1/...` to (no trailing slash, §4)."""
    return base_url(request, settings) + CAS_PREFIX


# --- hub side: tokens (§3) ---------------------------------------------------------------


def _token_route(scope: tokens.Scope) -> None:
    def handler(
        request: Request,
        plural: str,
        namespace: str,
        name: str,
        rev: str,
        session: SessionDep,
        principal: PrincipalDep,
        settings: SettingsDep,
        create_pr: bool = False,
    ) -> JSONResponse:
        repo_type = PLURALS.get(plural)
        if repo_type is None:
            raise NotFound(f"Unknown repo type {plural!r}")
        repo = get_repo(
            session,
            principal,
            repo_type,
            f"{namespace}/{name}",
            upload=scope == "write",
            content=True,
        )
        if scope == "read" or not (rev == "None" or create_pr):
            resolve_revision(session, repo, None if rev == "None" else rev)
        granted = grants.grant(principal, repo, write=scope == "write")
        token = tokens.issue_token(granted.encode(), scope)
        secret = tokens.encode_token(settings, token)
        url = cas_url(request, settings)
        headers = {
            "X-Xet-Cas-Url": url,
            "X-Xet-Access-Token": secret,
            "X-Xet-Token-Expiration": str(token.exp),
        }
        return JSONResponse(
            {"accessToken": secret, "exp": token.exp, "casUrl": url}, headers=headers
        )

    router.add_api_route(
        f"/api/{{plural}}/{{namespace}}/{{name}}/xet-{scope}-token/{{rev:path}}",
        handler,
        methods=["GET"],
        name=f"xet_{scope}_token",
        tags=["xet"],
    )


_token_route("read")
_token_route("write")


# --- CAS (§4) ----------------------------------------------------------------------------


def granted_repo(request: Request, scope: tokens.Scope) -> int:
    """The id of the repo a request's Xet token grants scope on, checked now (`grants.check`)."""
    token = tokens.token_from_request(request.app.state.settings, request, scope)
    with request.app.state.sessionmaker() as session:
        return grants.check(session, grants.Grant.decode(token.grant), write=scope == "write").id


@router.post(CAS_PREFIX + "/v1/xorbs/{prefix}/{xorb}", tags=["xet"])
async def upload_xorb(
    request: Request, prefix: str, xorb: str, settings: SettingsDep, blobs: BlobsDep
) -> dict[str, bool]:
    repo_id = await run_in_threadpool(granted_repo, request, "write")
    parse_hash(xorb)
    body = await read_body(request, MAX_XORB_BODY)
    factory = request.app.state.sessionmaker
    quota = RepoQuota(settings, repo_id)
    inserted = await run_in_threadpool(store_xorb, factory, blobs, xorb.lower(), body, quota)
    return {"was_inserted": inserted}


@router.post(CAS_PREFIX + "/v1/shards", tags=["xet"])
async def upload_shard(request: Request, settings: SettingsDep, blobs: BlobsDep) -> dict[str, int]:
    repo_id = await run_in_threadpool(granted_repo, request, "write")
    body = await read_body(request, MAX_SHARD_BODY)
    factory = request.app.state.sessionmaker
    quota = RepoQuota(settings, repo_id)
    result = await run_in_threadpool(register_shard, factory, blobs, repo_id, body, quota)
    return {"result": result}


@router.post(CAS_PREFIX + "/v2/shards", tags=["xet"])
async def upload_shard_v2(request: Request, settings: SettingsDep, blobs: BlobsDep) -> Response:
    """V2 answers NDJSON frames ending in `{"type":"result"}`, with keep-alive frames while a
    long verification runs (progress.py)."""
    repo_id = await run_in_threadpool(granted_repo, request, "write")
    body = await read_body(request, MAX_SHARD_BODY)
    factory = request.app.state.sessionmaker
    quota = RepoQuota(settings, repo_id)

    async def work() -> int:
        return await run_in_threadpool(register_shard, factory, blobs, repo_id, body, quota)

    answer = await settle_or_stream(work)
    media = "application/x-ndjson"
    if isinstance(answer, str):
        return Response(answer, media_type=media)
    return StreamingResponse(answer, media_type=media)


@router.post(CAS_PREFIX + "/v1/telemetry", tags=["xet"])
async def telemetry() -> dict[str, str]:
    """The client reports transfer statistics; nothing here uses them."""
    return {}


@router.get(CAS_PREFIX + "/v1/chunks/{prefix}/{chunk}", tags=["xet"])
def dedup_query(
    request: Request,
    prefix: str,
    chunk: str,
    session: SessionDep,
    settings: SettingsDep,
    blobs: BlobsDep,
) -> Response:
    """Global dedup: the xorb holding this chunk, every chunk hash keyed by a fresh random key
    (§4.3), so the answer is useful only to a client that holds the chunk itself. Only an
    uploader asks (hf_xet sends its write token): a read token may not probe for content."""
    granted_repo(request, "write")
    parse_hash(chunk)
    row = session.get(XetDedupChunk, chunk.lower())
    if row is None:
        raise NotFound("Chunk not found")
    # The chunk's own xorb first, then the other xorbs of its file: a client re-uploading a
    # changed model finds every unchanged xorb, not only those holding an eligible chunk.
    wanted = [hashing.from_hex(row.xorb_hash)]
    for term in load_recipe(blobs, row.file_hash):
        if term.xorb not in wanted and len(wanted) < DEDUP_MAX_XORBS:
            wanted.append(term.xorb)
    found = load_xorbs(session, wanted)
    xorbs = {h: found[h] for h in wanted if h in found}
    answer = build_dedup_answer(xorbs, secrets.token_bytes(32), DEDUP_KEY_EXPIRY_S)
    return Response(answer, media_type="application/octet-stream")


def _readable(session: Session, repo_id: int, file_hex: str) -> bool:
    """A repo reads a Xet file when it was given the file's sha256 (upload or commit)."""
    found = session.scalar(
        select(LfsObject.oid)
        .join(RepoLfsObject, RepoLfsObject.oid == LfsObject.oid)
        .where(LfsObject.xet_hash == file_hex, RepoLfsObject.repo_id == repo_id)
        .limit(1)
    )
    return found is not None


def _reconstruction(
    request: Request,
    file: str,
    session: Session,
    settings: Settings,
    blobs: BlobStore,
    version: int,
) -> dict[str, object]:
    """The terms covering the requested range and fetch URLs for their xorb bytes (§4.1)."""
    repo_id = granted_repo(request, "read")
    file_hex = file.lower()
    parse_hash(file_hex)
    if not _readable(session, repo_id, file_hex):
        raise NotFound("File not found")
    session.close()
    terms = load_recipe(blobs, file_hex)
    size = sum(t.raw_len for t in terms)
    start, end = parse_range_header(request.headers.get("range"), size)
    offset, slices = slice_range(terms, start, end)
    ranges = merged_ranges(slices)
    urls = FetchUrls(cas_url(request, settings), settings, blobs)
    answer: dict[str, object] = {
        "offset_into_first_range": offset,
        "terms": [term_json(s) for s in slices],
    }
    if version == 1:
        answer["fetch_info"] = {
            hashing.to_hex(x): [
                {
                    "range": {"start": c0, "end": c1},
                    "url": urls.url(x, [(b0, b1)]),
                    "url_range": {"start": b0, "end": b1},
                }
                for c0, c1, b0, b1 in spans
            ]
            for x, spans in ranges.items()
        }
    else:
        answer["xorbs"] = {
            hashing.to_hex(x): [
                {
                    "url": urls.url(x, [(b0, b1) for _, _, b0, b1 in group]),
                    "ranges": [
                        {"chunks": {"start": c0, "end": c1}, "bytes": {"start": b0, "end": b1}}
                        for c0, c1, b0, b1 in group
                    ],
                }
                for group in urls.groups(spans)
            ]
            for x, spans in ranges.items()
        }
    return answer


@runtime_checkable
class RangePresigner(Protocol):
    """A store that signs URLs bound to one byte range (S3): fetches then bypass the app."""

    def presigned_range_url(self, key: str, start: int, end: int, expires_s: int) -> str: ...


@dataclass(frozen=True)
class FetchUrls:
    """Self-authorizing fetch URLs limited to byte ranges of one xorb (§4.2): presigned S3
    URLs (one range each, the Range header is signed) when the store and settings allow,
    else this app's signed `/v1/fetch` URL, which may grant several ranges."""

    base: str
    settings: Settings
    blobs: BlobStore

    @property
    def presigner(self) -> RangePresigner | None:
        if self.settings.s3_presign_downloads and isinstance(self.blobs, RangePresigner):
            return self.blobs
        return None

    def groups(self, spans: list[Span]) -> list[list[Span]]:
        """V2 entries: all ranges under one URL, or one URL per range when presigning."""
        return [[span] for span in spans] if self.presigner else [spans]

    def url(self, xorb: bytes, ranges: list[tuple[int, int]]) -> str:
        xhex = hashing.to_hex(xorb)
        presigner = self.presigner
        if presigner is not None and len(ranges) == 1:
            start, end = ranges[0]
            return presigner.presigned_range_url(xorb_key(xhex), start, end, tokens.FETCH_TTL_S)
        return f"{self.base}/v1/fetch/{xhex}?{tokens.sign_fetch(self.settings, xhex, ranges)}"


@router.get(CAS_PREFIX + "/v1/reconstructions/{file}", tags=["xet"])
def reconstruction_v1(
    request: Request, file: str, session: SessionDep, settings: SettingsDep, blobs: BlobsDep
) -> dict[str, object]:
    return _reconstruction(request, file, session, settings, blobs, 1)


@router.get(CAS_PREFIX + "/v2/reconstructions/{file}", tags=["xet"])
def reconstruction_v2(
    request: Request, file: str, session: SessionDep, settings: SettingsDep, blobs: BlobsDep
) -> dict[str, object]:
    return _reconstruction(request, file, session, settings, blobs, 2)


@router.get(CAS_PREFIX + "/v1/fetch/{xorb}", tags=["xet"])
def fetch(request: Request, xorb: str, t: str, settings: SettingsDep, blobs: BlobsDep) -> Response:
    """Ranged read of a stored xorb through a signed URL: no Authorization header (§4.2)."""
    header = request.headers.get("range", "")
    first, _, last = header.removeprefix("bytes=").partition("-")
    if not header.startswith("bytes=") or not first.isdigit() or not last.isdigit():
        raise BadRequest("A fetch needs one Range: bytes=a-b")
    start, end = int(first), int(last)
    xorb = xorb.lower()
    tokens.check_fetch(settings, xorb, t, start, end)
    stream: Iterator[bytes] = blobs.open(xorb_key(xorb), start, end - start + 1)
    headers = {"Content-Range": f"bytes {start}-{end}/*", "Content-Length": str(end - start + 1)}
    return StreamingResponse(stream, 206, headers, media_type="application/octet-stream")
