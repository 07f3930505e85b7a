from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.service import Actor, record
from app.auth.accounts import get_org, may_manage, remove_member
from app.auth.models import Organization
from app.auth.permissions import Principal, Scope
from app.auth.service import add_member, create_org, get_user, user_orgs
from app.db.engine import write_transaction
from app.deps import FactoryDep, SessionDep, UserDep
from app.errors import Forbidden

router = APIRouter(tags=["auth"])


HUB_PERMISSIONS = {
    "read": ["repo.content.read"],
    "discussion": ["repo.content.read", "discussion.write"],
    "write": ["repo.content.read", "discussion.write", "repo.write"],
}


def _fine_grained(session: SessionDep, scopes: tuple[Scope, ...]) -> dict[str, Any]:
    """A fine-grained token's grants in the Hub's shape (`auth.accessToken.fineGrained`)."""
    scoped = []
    for scope in scopes:
        repo = scope.repo
        if repo is not None:
            kind, name = repo
        else:
            is_org = session.scalar(
                select(Organization.id).where(Organization.name == scope.entity)
            )
            kind, name = ("org" if is_org is not None else "user"), scope.entity
        scoped.append(
            {
                "entity": {"type": kind, "name": name},
                "permissions": HUB_PERMISSIONS[scope.permission],
            }
        )
    return {"canReadGatedRepos": False, "global": [], "scoped": scoped}


@router.get("/api/whoami-v2")
def whoami(principal: UserDep, session: SessionDep) -> dict[str, Any]:
    """The caller, in the shape `huggingface_hub.HfApi.whoami()` reads."""
    assert principal.user is not None
    user = principal.user
    orgs = user_orgs(session, user)
    auth: dict[str, Any] = {"type": "access_token"}
    if principal.token is not None:
        auth["accessToken"] = {
            "displayName": principal.token.label,
            "role": principal.token.role,
            "createdAt": principal.token.created_at.isoformat().replace("+00:00", "Z"),
        }
        if principal.scopes is not None:
            auth["accessToken"]["fineGrained"] = _fine_grained(session, principal.scopes)
    return {
        "type": "user",
        "id": str(user.id),
        "name": user.name,
        "fullname": user.fullname or user.name,
        "email": user.email,
        "emailVerified": bool(user.email),
        "isPro": False,
        "canPay": False,
        "periodEnd": None,
        "avatarUrl": "",
        "orgs": [
            {
                "type": "org",
                "id": str(org.id),
                "name": org.name,
                "fullname": org.fullname or org.name,
                "roleInOrg": role,
            }
            for org, role in orgs
        ],
        "auth": auth,
    }


# --- organizations, for site admins and org admins -------------------------------------------


class NewOrganization(BaseModel):
    name: str
    owner: str
    fullname: str | None = None


class MemberRole(BaseModel):
    role: str


def _org_admin(session: Session, principal: Principal, org_name: str) -> Organization:
    """The org, if the caller may manage it (site admin or its admin, with a write token)."""
    org = get_org(session, org_name)
    if principal.role != "write":
        raise Forbidden("Managing an organization needs a write token")
    if not may_manage(session, principal, org):
        raise Forbidden(f"Only admins of {org_name} may manage its members")
    return org


def _actor(request: Request, principal: Principal) -> Actor:
    return Actor.of(request, principal, "api")


@router.post("/api/admin/organizations", status_code=201)
def create_organization(
    request: Request, body: NewOrganization, principal: UserDep, factory: FactoryDep
) -> dict[str, Any]:
    """Site admins create an organization with its first admin (`atrium orgs create`)."""
    if not principal.is_admin or principal.role != "write":
        raise Forbidden("Only site administrators with a write token create organizations")
    with write_transaction(factory) as session:
        org = create_org(session, body.name, get_user(session, body.owner))
        org.fullname = body.fullname
        record(session, _actor(request, principal), "org.create", org.name, owner=body.owner)
    return {
        "name": org.name,
        "fullname": org.fullname,
        "members": [{"user": body.owner, "role": "admin"}],
    }


@router.put("/api/organizations/{org_name}/members/{user_name}")
def set_member(
    request: Request,
    org_name: str,
    user_name: str,
    body: MemberRole,
    principal: UserDep,
    factory: FactoryDep,
) -> dict[str, str]:
    """Add a member or change their role (`atrium orgs add-member`)."""
    with write_transaction(factory) as session:
        org = _org_admin(session, principal, org_name)
        add_member(session, org, get_user(session, user_name), body.role)
        actor = _actor(request, principal)
        record(session, actor, "org.member", org_name, user=user_name, role=body.role)
    return {"user": user_name, "role": body.role}


@router.delete("/api/organizations/{org_name}/members/{user_name}")
def delete_member(
    request: Request, org_name: str, user_name: str, principal: UserDep, factory: FactoryDep
) -> dict[str, str]:
    """Remove a member; the org's private repos turn into 404s for them at once."""
    with write_transaction(factory) as session:
        org = _org_admin(session, principal, org_name)
        remove_member(session, org, get_user(session, user_name))
        record(session, _actor(request, principal), "org.member.remove", org_name, user=user_name)
    return {"removed": user_name}
