"""Recording and reading audit events (no HTTP here).

An event is added to the session that makes the change, so it commits with the change or not at
all: a refused or rolled-back change leaves no trace, and a committed one always has its row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.models import Token
from app.auth.permissions import Principal
from app.errors import Forbidden
from app.http import client_ip, iso_z
from app.repos.models import Repo

ACTIONS = (
    "user.create",
    "user.password",
    "user.disable",
    "user.enable",
    "user.promote",
    "user.demote",
    "user.delete",
    "org.create",
    "org.member",
    "org.member.remove",
    "org.delete",
    "login.failed",
    "login.sso",
    "token.create",
    "token.revoke",
    "repo.create",
    "repo.duplicate",
    "repo.visibility",
    "repo.move",
    "repo.delete",
    "repo.lfs_delete",
    "repo.push",
    "repo.gated",
    "gate.request",
    "gate.decide",
    "gate.grant",
)


@dataclass(frozen=True)
class Actor:
    """Who acts, from where, and through what (api, web, git or cli)."""

    name: str | None
    ip: str | None
    via: str

    @classmethod
    def of(cls, request: Request, principal: Principal, via: str) -> Actor:
        return cls(principal.name, client_ip(request), via)


CLI = Actor(None, None, "cli")  # an operator's command on the server: no user, no address


def record(session: Session, actor: Actor, action: str, target: str | None, **details: Any) -> None:
    assert action in ACTIONS, action
    event = AuditEvent(
        actor=actor.name,
        action=action,
        target=target,
        ip=actor.ip,
        details={"via": actor.via, **details},
    )
    session.add(event)


def record_token(session: Session, actor: Actor, action: str, token: Token, owner: str) -> None:
    record(session, actor, action, owner, token_id=token.id, label=token.label, role=token.role)


def record_push(
    session: Session, actor: Actor, repo: Repo, ref: str, old: str | None, new: str | None
) -> None:
    """A ref moved by a commit or a git push: old None is a new ref, new None a deleted one."""
    record(session, actor, "repo.push", repo.repo_id, type=repo.type, ref=ref, old=old, new=new)


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("Only site administrators may read the audit log")


def events(
    session: Session,
    *,
    limit: int,
    before: int | None = None,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
) -> Sequence[AuditEvent]:
    """Newest first; `before` is the id of the last event of the previous page."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if before is not None:
        query = query.where(AuditEvent.id < before)
    if action:
        query = query.where(AuditEvent.action == action)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if target:
        query = query.where(AuditEvent.target == target)
    return session.scalars(query).all()


def as_json(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "time": iso_z(event.at),
        "actor": event.actor,
        "action": event.action,
        "target": event.target,
        "ip": event.ip,
        "details": event.details,
    }
