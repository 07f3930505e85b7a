"""Self-authorizing URLs for the LFS transfer: huggingface_hub sends the basic PUT, the part
PUTs and the multipart completion with no Authorization header (lfs.py:351-442, observed),
so each such URL carries what it grants, an expiry and an HMAC of both."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from app.errors import Forbidden

UPLOAD_TTL_S = 6 * 3600  # a multi-GB upload on a slow link must finish before the URL dies


def _mac(secret: bytes, purpose: str, fields: Mapping[str, str]) -> str:
    message = "\n".join([purpose, *(f"{k}={fields[k]}" for k in sorted(fields))])
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def sign(
    secret: bytes, purpose: str, fields: Mapping[str, str], ttl_s: int = UPLOAD_TTL_S
) -> dict[str, str]:
    """The query parameters of a URL granting `purpose` on `fields` until now + ttl_s."""
    signed = {**fields, "exp": str(int(time.time()) + ttl_s)}
    return {**signed, "sig": _mac(secret, purpose, signed)}


def verify(
    secret: bytes, purpose: str, query: Mapping[str, str], names: tuple[str, ...]
) -> dict[str, str]:
    """The signed fields of a request's query; Forbidden when forged, altered or expired."""
    fields = {name: query.get(name, "") for name in (*names, "exp")}
    expected = _mac(secret, purpose, fields)
    if not hmac.compare_digest(expected, query.get("sig", "")):
        raise Forbidden("This transfer URL is invalid; request a new one from the batch API")
    if not fields["exp"].isdigit() or int(fields["exp"]) < time.time():
        raise Forbidden("This transfer URL has expired; request a new one from the batch API")
    return fields
