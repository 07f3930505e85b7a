"""What an operator does to accounts, organizations and tokens (`atrium users|orgs|tokens`):
list them, disable, delete, promote, manage members, revoke. No HTTP here; each function works
in the caller's transaction and raises the domain errors the CLI prints as one line."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.auth.models import BrowserSession, Membership, Organization, Token, User
from app.auth.permissions import Principal
from app.auth.service import get_user, set_password
from app.db.base import utcnow
from app.errors import BadRequest, Conflict, NotFound
from app.repos.models import Repo

_DURATION = re.compile(r"^(?P<n>[1-9][0-9]{0,5})(?P<unit>[hdwy])$")
_UNIT = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


def expiry(text: str | None) -> datetime | None:
    """`30d`, `12h`, `4w`, `1y` from now; None for no text."""
    if not text:
        return None
    match = _DURATION.match(text.strip())
    if match is None:
        raise BadRequest(f"invalid duration {text!r}: use a number and h, d, w or y, e.g. 30d")
    count, unit = int(match["n"]), match["unit"]
    step = timedelta(days=365) if unit == "y" else _UNIT[unit]
    return utcnow() + count * step


def check_password(password: str, min_length: int) -> str:
    if len(password) < min_length:
        raise BadRequest(f"the password is too short: use at least {min_length} characters")
    return password


# --- users --------------------------------------------------------------------------------


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.name)))


def repo_count(session: Session, namespace: str) -> int:
    return (
        session.scalar(select(func.count()).select_from(Repo).where(Repo.namespace == namespace))
        or 0
    )


def end_sessions(session: Session, user: User) -> None:
    """Sign every browser of the user out."""
    session.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))


def set_disabled(session: Session, name: str, disabled: bool) -> User:
    """A disabled user's tokens and sessions stop working at once; enabling brings the
    tokens back (sessions stay ended)."""
    user = get_user(session, name)
    user.disabled_at = utcnow() if disabled else None
    if disabled:
        end_sessions(session, user)
    return user


def set_admin(session: Session, name: str, admin: bool) -> User:
    user = get_user(session, name)
    if not admin and user.is_admin:
        others = session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.is_admin.is_(True), User.id != user.id, User.disabled_at.is_(None))
        )
        if not others:
            raise Conflict(f"{name} is the last administrator; promote another user first")
    user.is_admin = admin
    return user


def change_password(session: Session, name: str, password: str, min_length: int) -> User:
    """A new password; every browser session of the user ends (their fingerprint changes)."""
    user = get_user(session, name)
    set_password(user, check_password(password, min_length))
    end_sessions(session, user)
    return user


def delete_user(session: Session, name: str, transfer_to: str | None = None) -> int:
    """Delete the account with its tokens, sessions and memberships. Refused while it owns
    repos, unless they move to `transfer_to` (a user or organization); returns how many
    moved."""
    user = get_user(session, name)
    owned = list(session.scalars(select(Repo).where(Repo.namespace == user.name)))
    if owned and transfer_to is None:
        raise Conflict(
            f"{name} owns {len(owned)} repositories; delete them first or pass "
            "--transfer-to USER_OR_ORG"
        )
    if owned:
        target = _namespace(session, transfer_to or "")
        taken = {
            (r.type, r.name) for r in session.scalars(select(Repo).where(Repo.namespace == target))
        }
        clash = [r.name for r in owned if (r.type, r.name) in taken]
        if clash:
            raise Conflict(f"{target} already has repositories named {', '.join(clash)}")
        session.execute(update(Repo).where(Repo.namespace == user.name).values(namespace=target))
    session.execute(delete(Token).where(Token.user_id == user.id))
    session.execute(delete(BrowserSession).where(BrowserSession.user_id == user.id))
    session.execute(delete(Membership).where(Membership.user_id == user.id))
    session.delete(user)
    session.flush()
    return len(owned)


def _namespace(session: Session, name: str) -> str:
    if session.scalar(select(User.name).where(User.name == name)) is not None:
        return name
    if session.scalar(select(Organization.name).where(Organization.name == name)) is not None:
        return name
    raise NotFound(f"no user or organization named {name!r}")


# --- organizations ------------------------------------------------------------------------


def get_org(session: Session, name: str) -> Organization:
    org = session.scalar(select(Organization).where(Organization.name == name))
    if org is None:
        raise NotFound(f"organization {name!r} not found")
    return org


def list_orgs(session: Session) -> list[tuple[Organization, int]]:
    """Every organization with its number of members."""
    members = (
        select(Membership.org_id, func.count().label("n")).group_by(Membership.org_id).subquery()
    )
    rows = session.execute(
        select(Organization, func.coalesce(members.c.n, 0))
        .outerjoin(members, members.c.org_id == Organization.id)
        .order_by(Organization.name)
    )
    return [(org, int(n)) for org, n in rows.tuples()]


@dataclass(frozen=True)
class Member:
    name: str
    role: str


def org_members(session: Session, org: Organization) -> list[Member]:
    rows = session.execute(
        select(User.name, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.org_id == org.id)
        .order_by(User.name)
    )
    return [Member(name, role) for name, role in rows.tuples()]


def member_role(session: Session, org: Organization, user: User | None) -> str | None:
    """The user's role in the org, None for a non-member."""
    if user is None:
        return None
    return session.scalar(
        select(Membership.role).where(Membership.org_id == org.id, Membership.user_id == user.id)
    )


def may_manage(session: Session, principal: Principal, org: Organization) -> bool:
    """Site admins and the org's own admins manage its members and settings."""
    return principal.is_admin or member_role(session, org, principal.user) == "admin"


def remove_member(session: Session, org: Organization, user: User) -> None:
    member = session.scalar(
        select(Membership).where(Membership.org_id == org.id, Membership.user_id == user.id)
    )
    if member is None:
        raise NotFound(f"{user.name} is not a member of {org.name}")
    if member.role == "admin":
        admins = session.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.org_id == org.id, Membership.role == "admin")
        )
        if admins == 1:
            raise Conflict(f"{user.name} is the last admin of {org.name}; make another admin first")
    session.delete(member)
    session.flush()


def delete_org(session: Session, org: Organization) -> None:
    count = repo_count(session, org.name)
    if count:
        raise Conflict(f"{org.name} owns {count} repositories; delete or move them first")
    session.execute(delete(Membership).where(Membership.org_id == org.id))
    session.delete(org)
    session.flush()


# --- tokens -------------------------------------------------------------------------------


def user_tokens(session: Session, user: User) -> list[Token]:
    """Every token of the user that was not revoked, expired ones included, newest first."""
    query = select(Token).where(Token.user_id == user.id, Token.revoked_at.is_(None))
    return list(session.scalars(query.order_by(Token.created_at.desc(), Token.id.desc())))


def revoke_token_id(session: Session, token_id: int) -> Token:
    token = session.get(Token, token_id)
    if token is None or token.revoked_at is not None:
        raise NotFound(f"no active token with id {token_id}")
    token.revoked_at = utcnow()
    return token


@dataclass(frozen=True)
class Switch:
    """One of the on/off changes an administrator makes to an account (CLI and web alike)."""

    audit: str
    change: Callable[[Session, str, bool], User]
    on: bool
    done: str  # what happened, with {name}
    help: str


SWITCHES = {
    "disable": Switch(
        "user.disable",
        set_disabled,
        True,
        "disabled {name}: their tokens and sessions no longer work",
        "Disable NAME: their tokens and sessions stop working at once; repos stay.",
    ),
    "enable": Switch(
        "user.enable",
        set_disabled,
        False,
        "enabled {name}",
        "Enable NAME again (their tokens work again; they sign in anew).",
    ),
    "promote": Switch(
        "user.promote", set_admin, True, "{name} is an administrator", "Make NAME a site admin."
    ),
    "demote": Switch(
        "user.demote",
        set_admin,
        False,
        "{name} is no longer an administrator",
        "Take NAME's site admin rights (refused for the last administrator).",
    ),
}


def listed_user(user: User) -> dict[str, Any]:
    """A user in the Hub's lists of people (likers, followers): what `huggingface_hub.User`
    reads."""
    return {
        "user": user.name,
        "fullname": user.fullname or user.name,
        "avatarUrl": "",
        "type": "user",
        "isPro": False,
    }
