"""CAS access tokens and self-authorizing fetch URLs, both signed with the app's secret key.

Tokens are opaque to clients (xet-protocol.md §3): a signed claim of the grant they were
issued from (`app.repos.grants`: the repo by an id that never recurs, the hub token or user),
their scope and expiry. The signature proves the claim; every CAS call then checks the grant
against the database as it is now, so a revoked token, a deleted repo or user, or a repo turned
private stops the Xet token at once. Fetch URLs carry no Authorization header
(§4.2), so each one signs the xorb and the exact byte ranges it may read, and expires.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Literal

from fastapi import Request
from itsdangerous import BadSignature, URLSafeSerializer

from app.config import Settings
from app.errors import Forbidden, Unauthorized

TOKEN_TTL_S = 3600  # the client refreshes from the hub shortly before exp
FETCH_TTL_S = 3600
TOKEN_SALT = "atrium.xet.cas-token"
FETCH_SALT = "atrium.xet.fetch"

Scope = Literal["read", "write"]


@dataclass(frozen=True)
class CasToken:
    grant: str  # `app.repos.grants.Grant`, encoded: checked again on every use
    scope: Scope
    exp: int

    def require(self, scope: Scope) -> None:
        """Write implies read; a read token on a write route is 403."""
        if scope == "write" and self.scope != "write":
            raise Forbidden("This Xet token is read-only; ask the hub for a write token")


def _serializer(settings: Settings, salt: str) -> URLSafeSerializer:
    return URLSafeSerializer(settings.secret, salt=salt)


def issue_token(grant: str, scope: Scope) -> CasToken:
    return CasToken(grant, scope, int(time.time()) + TOKEN_TTL_S)


def encode_token(settings: Settings, token: CasToken) -> str:
    return str(_serializer(settings, TOKEN_SALT).dumps(asdict(token)))


def decode_token(settings: Settings, secret: str) -> CasToken:
    """The claims of a token this app signed; Unauthorized when forged or expired."""
    try:
        claims = _serializer(settings, TOKEN_SALT).loads(secret)
        token = CasToken(**claims)
    except (BadSignature, TypeError):
        raise Unauthorized("Invalid Xet access token") from None
    if token.exp < time.time():
        raise Unauthorized("Xet access token expired; refresh it from the hub")
    return token


def token_from_request(settings: Settings, request: Request, scope: Scope) -> CasToken:
    header = request.headers.get("authorization", "")
    kind, _, secret = header.partition(" ")
    if kind.lower() != "bearer" or not secret.strip():
        raise Unauthorized("A Xet access token (Authorization: Bearer) is required")
    token = decode_token(settings, secret.strip())
    token.require(scope)
    return token


Ranges = list[tuple[int, int]]  # inclusive byte ranges of a stored xorb


def format_ranges(ranges: Ranges) -> str:
    return ",".join(f"{a}-{b}" for a, b in ranges)


def parse_ranges(text: str) -> Ranges:
    out: Ranges = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        out.append((int(first), int(last)))
    return out


def sign_fetch(settings: Settings, xorb: str, ranges: Ranges) -> str:
    """The query string of a fetch URL that reads only `ranges` of `xorb`, for FETCH_TTL_S."""
    claim = {"x": xorb, "r": format_ranges(ranges), "e": int(time.time()) + FETCH_TTL_S}
    return "t=" + str(_serializer(settings, FETCH_SALT).dumps(claim))


def check_fetch(settings: Settings, xorb: str, signed: str, start: int, end: int) -> None:
    """Forbidden unless `signed` is this app's grant for xorb, unexpired, covering [start, end]."""
    try:
        claim = _serializer(settings, FETCH_SALT).loads(signed)
        allowed = parse_ranges(claim["r"])
        expires = int(claim["e"])
        granted_xorb = str(claim["x"])
    except (BadSignature, KeyError, TypeError, ValueError):
        raise Forbidden("Invalid fetch URL signature") from None
    if granted_xorb != xorb or expires < time.time():
        raise Forbidden("Fetch URL expired or issued for another object")
    if not any(a <= start and end <= b for a, b in allowed):
        raise Forbidden(f"Range {start}-{end} is outside what this fetch URL grants")
