"""Cursor pagination with `Link: <absolute url>; rel="next"` (hf-protocol.md §5.2).

The client fetches the next URL as-is (utils/_pagination.py), so it must be absolute and carry
every query parameter of the first request. Cursors are opaque base64url JSON; a cursor that
does not decode is a 400, never a silent restart from page one.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request

from app.config import Settings
from app.errors import BadRequest


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
