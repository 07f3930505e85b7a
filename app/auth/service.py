"""Users, organizations and tokens: creation, lookup and verification (no HTTP here)."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.auth.models import Membership, Organization, Token, User
from app.auth.permissions import Scope
from app.db.base import utcnow
from app.errors import BadRequest, Conflict, InvalidName, NotFound, Unauthorized

TOKEN_PREFIX = "atr_"
TOKEN_RANDOM_BYTES = 30  # 40 url-safe characters
TOKEN_PATTERN = re.compile(r"^atr_[A-Za-z0-9_-]{40}$")
ROLES = ("read", "write")  # what a token may do
FINE_GRAINED = "fineGrained"  # the role of a token limited by scopes, as the Hub names it
# What an organization's member may do: read its private repos; also create repos and write
# the ones they created; also write every one of its repos; also manage its members.
MEMBER_ROLES = ("read", "contributor", "write", "admin")
# Namespaces follow the Hub's rules (huggingface_hub utils/_validators.py): letters, digits,
# '-', '_', '.', no leading/trailing or doubled separators, at most 96 characters.
NAME_PATTERN = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
RESERVED_NAMES = frozenset(
    {
        "api",
        "models",
        "datasets",
        "spaces",
        "docs",
        "login",
        "logout",
        "settings",
        "new",
        "health",
        "metrics",
        "static",
        "search",
        "v1",
        "xet",
        "cas",
        "organizations",
        "join",
        "collections",
    }
)
_hasher = PasswordHasher()


@dataclass(frozen=True)
class IssuedToken:
    """A freshly created token; `secret` exists only here and is never stored."""

    token: Token
    secret: str


def validate_namespace(name: str) -> str:
    if not NAME_PATTERN.match(name) or name.lower() in RESERVED_NAMES:
        raise InvalidName(
            f"invalid name {name!r}: use 1-96 letters, digits, '-', '_' or '.', starting and "
            "ending with a letter or digit, and not a reserved word"
        )
    return name


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def namespace_taken(session: Session, name: str) -> bool:
    """Whether a user or org has this name, ignoring case; compared exactly, never as a LIKE
    pattern (names may hold `_`, a LIKE wildcard, and URLs may hold `%`)."""
    lowered = name.lower()
    users = select(User.id).where(func.lower(User.name) == lowered)
    orgs = select(Organization.id).where(func.lower(Organization.name) == lowered)
    return session.scalar(users) is not None or session.scalar(orgs) is not None


def create_user(
    session: Session,
    name: str,
    *,
    password: str | None = None,
    email: str | None = None,
    is_admin: bool = False,
    fullname: str | None = None,
) -> User:
    validate_namespace(name)
    if namespace_taken(session, name):
        raise Conflict(f"the name {name!r} is already taken by a user or organization")
    user = User(
        name=name,
        fullname=(fullname or "").strip()[:200] or None,
        email=email,
        is_admin=is_admin,
        password_hash=_hasher.hash(password) if password else None,
    )
    session.add(user)
    session.flush()
    return user


def create_org(session: Session, name: str, owner: User) -> Organization:
    validate_namespace(name)
    if namespace_taken(session, name):
        raise Conflict(f"the name {name!r} is already taken by a user or organization")
    org = Organization(name=name)
    session.add(org)
    session.flush()
    session.add(Membership(org_id=org.id, user_id=owner.id, role="admin"))
    session.flush()
    return org


def add_member(session: Session, org: Organization, user: User, role: str = "write") -> None:
    """Make user a member of org with role, or change the role of a member."""
    if role not in MEMBER_ROLES:
        raise BadRequest(f"unknown role {role!r}; use one of: {', '.join(MEMBER_ROLES)}")
    member = session.scalar(
        select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id)
    )
    if member is None:
        session.add(Membership(org_id=org.id, user_id=user.id, role=role))
    else:
        member.role = role
    session.flush()


def get_user(session: Session, name: str) -> User:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"user {name!r} not found")
    return user


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def set_password(user: User, password: str) -> None:
    user.password_hash = _hasher.hash(password)


def create_token(
    session: Session,
    user: User,
    *,
    role: str = "write",
    label: str = "",
    expires_at: datetime | None = None,
    scopes: Sequence[Scope] | None = None,
) -> IssuedToken:
    """A new token. With scopes it is fine-grained: it may do only what they name."""
    if scopes:
        role = FINE_GRAINED
    elif role not in ROLES:
        raise BadRequest(f"unknown role {role!r}; use one of: {', '.join(ROLES)}")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)
    token = Token(
        user_id=user.id,
        label=label or f"{role} token",
        role=role,
        digest=hash_token(secret),
        hint=secret[-4:],
        expires_at=expires_at,
        scopes=[scope.as_json() for scope in scopes] if scopes else None,
    )
    session.add(token)
    session.flush()
    return IssuedToken(token=token, secret=secret)


def authenticate_token(session: Session, secret: str) -> tuple[User, Token]:
    """The user and token for a secret; Unauthorized when malformed, unknown, revoked,
    expired (saying so: its owner knows it had an expiry) or its account is disabled."""
    if not TOKEN_PATTERN.match(secret):
        raise Unauthorized()
    token = session.scalar(select(Token).where(Token.digest == hash_token(secret)))
    if token is None or token.revoked_at is not None:
        raise Unauthorized()
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthorized(f"This token expired on {token.expires_at:%Y-%m-%d %H:%M} UTC")
    user = session.get(User, token.user_id)
    if user is None:
        raise Unauthorized()
    if user.disabled_at is not None:
        raise Unauthorized("This account is disabled; ask an administrator")
    return user, token


LAST_USED_PRECISION = timedelta(minutes=5)


def token_use_due(token: Token) -> bool:
    """Whether the token's last use is worth recording again: at most once per
    LAST_USED_PRECISION, a write every few minutes per token, not one per request."""
    last = token.last_used_at
    return last is None or utcnow() - last >= LAST_USED_PRECISION


def note_token_use(session: Session, token_id: int) -> None:
    """Record that the token was used now (unless another request just did)."""
    now = utcnow()
    stale = or_(Token.last_used_at.is_(None), Token.last_used_at < now - LAST_USED_PRECISION)
    session.execute(update(Token).where(Token.id == token_id, stale).values(last_used_at=now))


def list_tokens(session: Session, user: User) -> list[Token]:
    query = select(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))
    return list(session.scalars(query.order_by(Token.created_at.desc())))


def revoke_token(session: Session, user: User, token_id: int) -> Token:
    token = session.get(Token, token_id)
    if token is None or token.user_id != user.id or token.revoked_at is not None:
        raise NotFound("token not found")
    token.revoked_at = utcnow()
    return token


def user_orgs(session: Session, user: User) -> list[tuple[Organization, str]]:
    rows = session.execute(
        select(Organization, Membership.role)
        .join(Membership, Membership.org_id == Organization.id)
        .where(Membership.user_id == user.id)
        .order_by(Organization.name)
    )
    return [(org, role) for org, role in rows.tuples()]
