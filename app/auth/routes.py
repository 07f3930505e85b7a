from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.auth.service import user_orgs
from app.deps import SessionDep, UserDep

router = APIRouter(tags=["auth"])


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
