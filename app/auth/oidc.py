"""Single sign-on with OpenID Connect: the authorization code flow with PKCE against the
provider named by ATRIUM_OIDC_ISSUER (its discovery document and keys), the ID token checked
by joserfc, authlib's JOSE library (signature from the provider's JWKS, `iss`, `aud`, `exp`,
`nonce`), and the account it signs in: the one made from the same identity before, or a new
one named by ATRIUM_OIDC_USERNAME_CLAIM. ATRIUM_OIDC_GROUPS_CLAIM may list `ORG:ROLE` groups
that make the user a member of existing organizations at each sign-in. No HTTP routes here
(app.web.sso)."""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Organization, User
from app.auth.service import MEMBER_ROLES, add_member, create_user, namespace_taken
from app.config import Settings
from app.errors import AtriumError, BadRequest, Conflict, Unauthorized

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
DISCOVERY_TTL_S = 3600
LEEWAY_S = 60  # clock skew allowed on exp/iat
TIMEOUT_S = 10


class SsoUnavailable(AtriumError):
    status = 502
    default_message = "The single sign-on provider did not answer"


@dataclass(frozen=True)
class ProviderInfo:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class Attempt:
    """What a sign-in carries from the redirect to the callback (in a signed cookie)."""

    state: str
    nonce: str
    verifier: str
    next: str


def configured(settings: Settings) -> bool:
    return bool(settings.oidc_issuer and settings.oidc_client_id)


_cache: dict[str, tuple[float, Any]] = {}
_cache_lock = threading.Lock()


def _get_json(url: str) -> Any:
    try:
        answer = httpx.get(url, timeout=TIMEOUT_S, follow_redirects=True)
        answer.raise_for_status()
        return answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise SsoUnavailable(f"The single sign-on provider did not answer ({exc})") from None


def _cached(key: str, fetch: Any, *, fresh: bool = False) -> Any:
    with _cache_lock:
        hit = _cache.get(key)
    if hit and not fresh and time.monotonic() - hit[0] < DISCOVERY_TTL_S:
        return hit[1]
    value = fetch()
    with _cache_lock:
        _cache[key] = (time.monotonic(), value)
    return value


def provider(settings: Settings) -> ProviderInfo:
    """The provider's endpoints from its discovery document, whose issuer must be ours."""
    issuer = (settings.oidc_issuer or "").rstrip("/")
    url = f"{issuer}/.well-known/openid-configuration"
    document = _cached(url, lambda: _get_json(url))
    if str(document.get("issuer", "")).rstrip("/") != issuer:
        raise SsoUnavailable("The provider's discovery document names another issuer")
    try:
        return ProviderInfo(
            issuer=document["issuer"],
            authorization_endpoint=document["authorization_endpoint"],
            token_endpoint=document["token_endpoint"],
            jwks_uri=document["jwks_uri"],
        )
    except KeyError as exc:
        raise SsoUnavailable(f"The provider's discovery document lacks {exc}") from None


def _keys(info: ProviderInfo, *, fresh: bool = False) -> KeySet:
    document = _cached(info.jwks_uri, lambda: _get_json(info.jwks_uri), fresh=fresh)
    try:
        return KeySet.import_key_set(document)
    except (JoseError, ValueError, KeyError, TypeError) as exc:
        raise SsoUnavailable(f"The provider's keys could not be read ({exc})") from None


def start(settings: Settings, redirect_uri: str, next_url: str) -> tuple[str, Attempt]:
    """The provider's authorization URL for a new sign-in, and what the callback needs."""
    info = provider(settings)
    attempt = Attempt(
        state=secrets.token_urlsafe(24),
        nonce=secrets.token_urlsafe(24),
        verifier=secrets.token_urlsafe(48),
        next=next_url,
    )
    challenge = base64.urlsafe_b64encode(hashlib.sha256(attempt.verifier.encode()).digest())
    scope = "openid profile email"
    if settings.oidc_groups_claim:
        scope += f" {settings.oidc_groups_claim}"
    query = {
        "response_type": "code",
        "client_id": settings.oidc_client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": attempt.state,
        "nonce": attempt.nonce,
        "code_challenge": challenge.decode().rstrip("="),
        "code_challenge_method": "S256",
    }
    return f"{info.authorization_endpoint}?{urlencode(query)}", attempt


def finish(settings: Settings, code: str, redirect_uri: str, attempt: Attempt) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier) and return the verified ID token claims."""
    info = provider(settings)
    secret = settings.oidc_client_secret.get_secret_value() if settings.oidc_client_secret else ""
    try:
        answer = httpx.post(
            info.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": attempt.verifier,
            },
            auth=(settings.oidc_client_id or "", secret),
            timeout=TIMEOUT_S,
        )
    except httpx.HTTPError as exc:
        raise SsoUnavailable(f"The single sign-on provider did not answer ({exc})") from None
    if answer.status_code != 200:
        raise Unauthorized("The single sign-on provider refused the sign-in; try again")
    id_token = answer.json().get("id_token")
    if not isinstance(id_token, str):
        raise Unauthorized("The single sign-on provider sent no ID token")
    return verify_id_token(settings, id_token, nonce=attempt.nonce)


def verify_id_token(settings: Settings, id_token: str, *, nonce: str) -> dict[str, Any]:
    """The claims of an ID token signed by the provider for this client; Unauthorized for a
    bad signature, another issuer or audience, an expired token or a replayed nonce."""
    info = provider(settings)
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY_S,
        iss={"essential": True, "value": info.issuer},
        aud={"essential": True, "value": settings.oidc_client_id or ""},
        sub={"essential": True},
        exp={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    for fresh in (False, True):  # a key rotated since the last fetch: fetch them once more
        try:
            token = jwt.decode(id_token, _keys(info, fresh=fresh), algorithms=ALGORITHMS)
            registry.validate(token.claims)
            return dict(token.claims)
        except JoseError as exc:
            rotated = "key" in type(exc).__name__.lower() or "key" in str(exc).lower()
            if fresh or not rotated:
                raise Unauthorized(f"The single sign-on ID token was refused ({exc})") from None
        except ValueError as exc:  # not a JWT at all
            raise Unauthorized(f"The single sign-on ID token was refused ({exc})") from None
    raise Unauthorized("The single sign-on ID token was refused")


def account(session: Session, settings: Settings, claims: dict[str, Any]) -> User:
    """The account of this identity: made on its first sign-in, named by the username claim
    (a name already taken by another account is refused, never merged)."""
    subject = f"{claims['iss']} {claims['sub']}"
    user = session.scalar(select(User).where(User.oidc_subject == subject))
    if user is None:
        name = claims.get(settings.oidc_username_claim)
        if not isinstance(name, str) or not name:
            raise BadRequest(
                f"The ID token has no {settings.oidc_username_claim!r} claim to name the "
                "account by (ATRIUM_OIDC_USERNAME_CLAIM)"
            )
        if namespace_taken(session, name):
            raise Conflict(
                f"The name {name!r} belongs to another account here; ask an administrator"
            )
        email = claims.get("email") if isinstance(claims.get("email"), str) else None
        user = create_user(session, name, email=email)
        user.oidc_subject = subject
        user.fullname = claims.get("name") if isinstance(claims.get("name"), str) else None
    if user.disabled_at is not None:
        raise Unauthorized("This account is disabled; ask an administrator")
    if settings.oidc_groups_claim:
        _join_groups(session, user, claims.get(settings.oidc_groups_claim))
    return user


def _join_groups(session: Session, user: User, groups: Any) -> None:
    """`ORG:ROLE` (or `ORG`, read) groups of existing organizations: membership with that role."""
    if not isinstance(groups, list):
        return
    for group in groups:
        if not isinstance(group, str):
            continue
        org_name, _, role = group.partition(":")
        role = role or "read"
        if role not in MEMBER_ROLES:
            continue
        org = session.scalar(select(Organization).where(Organization.name == org_name))
        if org is not None:
            add_member(session, org, user, role)
