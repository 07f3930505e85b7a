from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from app.auth.models import Organization
from app.auth.permissions import Scope
from app.auth.service import user_orgs
from app.deps import SessionDep, UserDep

router = APIRouter(tags=["auth"])


HUB_PERMISSIONS = {"read": ["repo.content.read"], "write": ["repo.content.read", "repo.write"]}


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
