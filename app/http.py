"""HTTP plumbing shared by every route: request ids, Hub-style errors, access logs, dates,
base URLs, cursor pagination and raw request paths."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.exc import TimeoutError as SATimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.config import Settings
from app.db.engine import database_unavailable
from app.errors import (
    AtriumError,
    BadRequest,
    GatedRepo,
    PayloadTooLarge,
    RepoMoved,
    RepoNotFound,
)

log = logging.getLogger("atrium.access")
REQUEST_ID_HEADER = "X-Request-Id"


def iso_z(moment: datetime) -> str:
    """`2024-01-02T03:04:05.000Z`: huggingface_hub's parser needs the trailing Z."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def client_ip(request: Request) -> str:
    """The caller's address. Behind a reverse proxy listed in ATRIUM_TRUSTED_PROXIES, uvicorn
    has already put the client named by X-Forwarded-For here (`serve`'s proxy headers); from
    anyone else that header is ignored, so a client cannot pick its own address."""
    return request.client.host if request.client else "unknown"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


async def json_object(request: Request) -> dict[str, Any]:
    """The JSON body as an object; an empty body is `{}` (create_branch may send none)."""
    raw = await request.body()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise BadRequest("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    return data


def header_value(text: str) -> str:
    """text as a header value: latin-1, no control characters. Messages quote what the
    caller sent, and a NUL or CR/LF from a hostile path makes uvicorn drop the connection
    ("Invalid HTTP header value") instead of answering."""
    return _CONTROL.sub(" ", text).encode("latin-1", "replace").decode("latin-1")


def error_response(
    status: int,
    message: str,
    code: str | None = None,
    headers: dict[str, str] | None = None,
    *,
    head: bool = False,
    openai: bool = False,
) -> Response:
    out = dict(headers or {})
    out["X-Error-Message"] = header_value(message)
    if code:
        out["X-Error-Code"] = code
    if head:
        return Response(status_code=status, headers=out)
    body: dict[str, Any] = {"error": message}
    if openai:
        body = {"error": openai_error(status, message, code)}
    return JSONResponse(body, status_code=status, headers=out)


OPENAI_PREFIX = "/v1/"  # the OpenAI-compatible routes (app.inference.openai)
OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(status: int, message: str, code: str | None) -> dict[str, Any]:
    """The error object of OpenAI's API, which the `openai` client shows (`error.message`)."""
    kind = OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    names = {"RepoNotFound": "model_not_found", "RevisionNotFound": "model_not_found"}
    return {"message": message, "type": kind, "param": None, "code": names.get(code or "", code)}


DATABASE_RETRY_AFTER_S = 2


def moved_location(request: Request, exc: RepoMoved) -> str:
    """Where a request that named a moved repo by its old name goes: the same path and query
    with the repo's new name. Relative, as the Hub sends it: huggingface_hub follows only
    relative redirects with the caller's token (utils/_http.py)."""
    raw = (request.scope.get("raw_path") or b"").decode("latin-1") or request.url.path
    return exc.location(raw.split("?", 1)[0], request.url.query)


def install_error_handlers(app: FastAPI) -> None:
    def answer(
        request: Request,
        status: int,
        message: str,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """The Hub's error shape, or OpenAI's on the OpenAI-compatible routes."""
        openai = request.url.path.startswith(OPENAI_PREFIX)
        head = request.method == "HEAD"
        return error_response(status, message, code, headers, head=head, openai=openai)

    @app.exception_handler(AtriumError)
    async def _atrium(request: Request, exc: AtriumError) -> Response:
        # A hidden repo is 404 to everyone, anonymous included (ARCHITECTURE.md §6), unlike
        # huggingface.co's 401: the client maps both alike thanks to X-Error-Code.
        message = exc.message
        if isinstance(exc, RepoMoved):
            headers = {**exc.headers, "Location": moved_location(request, exc)}
            return answer(request, exc.status, message, exc.code, headers)
        if isinstance(exc, GatedRepo):
            message = exc.absolute(base_url(request, request.app.state.settings))
        return answer(request, exc.status, message, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        return answer(request, 400, "Invalid request: " + "; ".join(problems))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return answer(request, exc.status_code, message, None, dict(exc.headers or {}))

    @app.exception_handler(DataError)
    async def _bad_value(request: Request, exc: DataError) -> Response:
        # A value from the request that the database cannot hold or compare, e.g. a NUL in a
        # path or revision (PostgreSQL text refuses it; SQLite merely finds nothing): the
        # caller's error, not the server's.
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "invalid value"
        return answer(request, 400, f"Invalid request: {reason}")

    @app.exception_handler(OperationalError)
    @app.exception_handler(SATimeoutError)
    async def _database(request: Request, exc: Exception) -> Response:
        # Every connection busy, or the database refusing new ones: the request may succeed
        # in a moment, and huggingface_hub retries a 503 by itself.
        if not database_unavailable(exc):
            return await _unexpected(request, exc)
        logging.getLogger("atrium").warning(
            "database unavailable on %s: %s", request.url.path, str(exc).splitlines()[0]
        )
        return answer(
            request,
            503,
            "The database is busy, retry later",
            None,
            {"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logging.getLogger("atrium").exception("unhandled error on %s", request.url.path)
        return answer(request, 500, "Internal server error; see the server log for details")


def repo_from_path(scope: Scope) -> str | None:
    """`namespace/name` from the matched route's parameters, for routes that set no repo."""
    params = scope.get("path_params") or {}
    if "repo_id" in params:
        return str(params["repo_id"])
    if "namespace" in params and "name" in params:
        return f"{params['namespace']}/{params['name']}"
    return None


class RequestContextMiddleware:
    """Adds X-Request-Id to every response, refuses oversized bodies, logs one JSON line.

    `self_bounded(scope)` names the requests whose route bounds the body itself (a signed
    upload that refuses a byte past its signed size); the body limit does not apply to them."""

    def __init__(
        self, app: ASGIApp, max_body: int, self_bounded: Callable[[Scope], bool] = lambda _: False
    ):
        self.app = app
        self.max_body = max_body
        self.self_bounded = self_bounded

    def _too_large(self) -> str:
        return f"Request body too large: the limit is {self.max_body} bytes"

    def _counting(self, receive: Receive) -> Receive:
        """receive, raising 413 once the body passes the limit: a chunked body declares no
        length, so the header check alone would let it fill memory (`await request.body()`).
        The error rises inside the route; it is an HTTPException because FastAPI turns any
        other error met while reading a body parameter into a 400 (routing.py)."""
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise StarletteHTTPException(413, self._too_large())
            return message

        return counted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode("latin-1")),
                ]
            await send(message)

        try:
            await self._dispatch(scope, receive, send_with_id)
        except Exception:
            # An error no handler mapped: logged with its request id, answered here (so the
            # 500 carries X-Request-Id too) unless the response had already started.
            logging.getLogger("atrium").exception(
                "unhandled error on %s (request %s)", scope["path"], request_id
            )
            if "started" in status_holder:
                raise
            response = error_response(500, "Internal server error; see the server log for details")
            await response(scope, receive, send_with_id)
        finally:
            self._log(scope, request_id, status_holder["status"], started)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if self.self_bounded(scope):
            await self.app(scope, receive, send)
        elif length is not None and length.isdigit() and int(length) > self.max_body:
            response = error_response(413, self._too_large())
            await response(scope, receive, send)
        else:
            await self.app(scope, self._counting(receive), send)

    def _log(self, scope: Scope, request_id: str, status: int, started: float) -> None:
        """The access line of every request, failed ones included (status 500)."""
        state = scope.get("state", {})
        log.info(
            json.dumps(
                {
                    "request_id": request_id,
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                    "user": state.get("user_name"),
                    "repo": state.get("repo_id") or repo_from_path(scope),
                }
            )
        )


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body of a request whose route takes a bounded one: 413 as soon as it passes
    limit (the declared length is checked before anything is read)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Body of {declared} bytes exceeds this route's {limit}-byte limit")
    parts: list[bytes] = []
    total = 0
    async for part in request.stream():
        total += len(part)
        if total > limit:
            raise PayloadTooLarge(f"Body exceeds this route's {limit}-byte limit")
        parts.append(part)
    return b"".join(parts)


# --- pagination ------------------------------------------------------------------------------
# Cursor pagination with `Link: <absolute url>; rel="next"` (hf-protocol.md §5.2).
#
# The client fetches the next URL as-is (utils/_pagination.py), so it must be absolute and carry
# every query parameter of the first request. Cursors are opaque base64url JSON; a cursor that
# does not decode is a 400, never a silent restart from page one.


def encode_cursor(value: Any) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest(f"invalid pagination cursor {cursor[:40]!r}") from None


def offset_cursor(cursor: str | None) -> int:
    value = decode_cursor(cursor)
    if value is None:
        return 0
    if not isinstance(value, int) or value < 0:
        raise BadRequest("invalid pagination cursor")
    return value


def base_url(request: Request, settings: Settings) -> str:
    return settings.public_url or str(request.base_url).rstrip("/")


def next_link(
    request: Request, settings: Settings, cursor: str, *, raw_path: str | None = None
) -> str:
    """`<url>; rel="next"` for the same request with cursor replaced. raw_path (already
    percent-encoded) may pin a moving revision to the commit the first page was read at."""
    path = raw_path or (request.scope.get("raw_path") or b"").decode("latin-1")
    path = path.split("?", 1)[0] or request.url.path
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    params.append(("cursor", cursor))
    return f'<{base_url(request, settings)}{path}?{urlencode(params)}>; rel="next"'


def page_limit(limit: int | None, default: int, maximum: int) -> int:
    if limit is None:
        return default
    if limit < 1:
        raise BadRequest("limit must be a positive number")
    return min(limit, maximum)


# --- raw paths -------------------------------------------------------------------------------
# Route on the raw request path: revisions and tree paths arrive with `/` encoded as `%2F`
# (hf-protocol.md §4), and uvicorn decodes `scope["path"]` before routing, so
# `tree/refs%2Fpr%2F1/sub%2Fdir` and `tree/refs/pr/1/sub/dir` look alike there.

# huggingface_hub itself treats these as one revision even when not encoded (hf_api.py:278-285).
SPECIAL_REF = re.compile(r"^(refs/pr/\d+|refs/convert/[\w-]+)(?:/|$)")


def raw_segments(request: Request) -> list[str]:
    """The request path split on literal `/`, each segment percent-decoded afterwards."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    return [unquote(part) for part in path.strip("/").split("/")]


def repo_id_at(segments: list[str], index: int) -> str:
    """`namespace/name` from the two segments at index; RepoNotFound when they are missing or
    carry an encoded `/` (`foo%2Fbar` is one segment: it names no repo)."""
    pair = segments[index : index + 2]
    if len(pair) < 2 or not all(pair) or any("/" in part for part in pair):
        raise RepoNotFound(f"Repository not found: {'/'.join(pair)}")
    return f"{pair[0]}/{pair[1]}"


def split_revision_and_path(segments: list[str]) -> tuple[str, str]:
    """`[rev, *path]` -> (rev, path), keeping an unencoded `refs/pr/N` together."""
    if not segments:
        return "main", ""
    joined = "/".join(segments)
    match = SPECIAL_REF.match(joined)
    if match:
        revision = match.group(1)
        return revision, joined[len(revision) :].lstrip("/")
    return segments[0], "/".join(segments[1:])
