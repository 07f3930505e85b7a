"""Who may read and write what (ARCHITECTURE.md §6)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Membership, Organization, Token, User
from app.errors import Forbidden, Unauthorized


@dataclass
class Principal:
    """The caller of a request: a user with a token role, or anonymous (user None)."""

    user: User | None = None
    token: Token | None = None
    # "write" for browser sessions (the user acts in person), else the token's role.
    role: str = "read"
    _write_namespaces: set[str] | None = field(default=None, repr=False)
    _read_namespaces: set[str] | None = field(default=None, repr=False)

    @property
    def name(self) -> str | None:
        return self.user.name if self.user else None

    @property
    def is_admin(self) -> bool:
        return bool(self.user and self.user.is_admin)

    def namespaces(self, session: Session, *, write: bool) -> set[str]:
        """The namespaces this user may read (or write): their own and their orgs'."""
        if self.user is None:
            return set()
        if self._read_namespaces is None or self._write_namespaces is None:
            rows = session.execute(
                select(Organization.name, Membership.role)
                .join(Membership, Membership.org_id == Organization.id)
                .where(Membership.user_id == self.user.id)
            ).tuples()
            self._read_namespaces = {self.user.name}
            self._write_namespaces = {self.user.name}
            for org_name, role in rows:
                self._read_namespaces.add(org_name)
                if role in ("write", "admin"):
                    self._write_namespaces.add(org_name)
        return self._write_namespaces if write else self._read_namespaces


def can_read(session: Session, principal: Principal, namespace: str, private: bool) -> bool:
    if not private or principal.is_admin:
        return True
    return namespace in principal.namespaces(session, write=False)


def can_write(session: Session, principal: Principal, namespace: str) -> bool:
    if principal.user is None or principal.role != "write":
        return False
    return principal.is_admin or namespace in principal.namespaces(session, write=True)


def require_write(session: Session, principal: Principal, namespace: str) -> None:
    """Raise the error the Hub gives: 401 anonymous, 403 read token or foreign namespace."""
    if principal.user is None:
        raise Unauthorized("You must be authenticated to perform this action")
    if principal.role != "write":
        raise Forbidden("This token has read access only; a write token is needed for this action")
    if not can_write(session, principal, namespace):
        raise Forbidden(f"You don't have the rights to write to the namespace {namespace!r}")
