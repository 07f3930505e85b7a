"""Who may read and write what (ARCHITECTURE.md §6).

A caller's rights are those of its user (their namespaces, their orgs' by role), narrowed by
its token: a read token reads, a write token also writes, and a fine-grained token only does,
on the repos and namespaces it names, what it names (`Scope`). Public repos stay readable by
everyone, fine-grained tokens included, as anonymous callers read them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Membership, Organization, Token, User
from app.errors import BadRequest, Forbidden, Unauthorized
from app.repos.models import Repo

SCOPE_PERMISSIONS = ("read", "discussion", "write")  # each includes the ones before it
_TYPE_PREFIXES = {"datasets/": "dataset", "spaces/": "space"}


@dataclass(frozen=True)
class Scope:
    """One grant of a fine-grained token: `entity` is a namespace (`alice`, `acme`) or a repo
    (`acme/bert`, `datasets/acme/corpus`, `spaces/acme/demo`); `discussion` also opens
    discussions and pull requests and comments; `write` includes both."""

    entity: str
    permission: str

    @property
    def repo(self) -> tuple[str, str] | None:
        """(type, namespace/name) for a repo scope, None for a namespace scope."""
        entity = self.entity
        for prefix, kind in _TYPE_PREFIXES.items():
            if entity.startswith(prefix):
                return kind, entity.removeprefix(prefix)
        return ("model", entity) if "/" in entity else None

    @property
    def namespace(self) -> str:
        found = self.repo
        return found[1].split("/")[0] if found else self.entity

    def covers(self, namespace: str, repo: tuple[str, str] | None, *, write: bool) -> bool:
        if write and self.permission != "write":
            return False
        if self.repo is None:
            return self.entity == namespace
        return repo is not None and self.repo == repo

    @classmethod
    def parse(cls, text: str) -> Scope:
        """`ENTITY=read|discussion|write`."""
        entity, _, permission = text.strip().rpartition("=")
        entity = entity.strip().strip("/")
        if not entity or permission not in SCOPE_PERMISSIONS or entity.count("/") > 2:
            raise BadRequest(
                f"invalid scope {text!r}: use NAMESPACE=read|discussion|write or "
                "[datasets/|spaces/]NAMESPACE/REPO=read|discussion|write"
            )
        return cls(entity, permission)

    def as_json(self) -> dict[str, str]:
        return {"entity": self.entity, "permission": self.permission}


def token_scopes(token: Token | None) -> tuple[Scope, ...] | None:
    """The token's scopes; None for a token that is not fine-grained."""
    if token is None or token.scopes is None:
        return None
    return tuple(Scope(s["entity"], s["permission"]) for s in token.scopes)


@dataclass
class Principal:
    """The caller of a request: a user with a token role, or anonymous (user None)."""

    user: User | None = None
    token: Token | None = None
    # "write" for browser sessions (the user acts in person), else the token's role.
    role: str = "read"
    # A fine-grained token's grants; None for every other caller.
    scopes: tuple[Scope, ...] | None = None
    _write_namespaces: set[str] | None = field(default=None, repr=False)
    _read_namespaces: set[str] | None = field(default=None, repr=False)
    _contributor_namespaces: set[str] = field(default_factory=set, repr=False)

    @classmethod
    def of_token(cls, user: User, token: Token) -> Principal:
        scopes = token_scopes(token)
        if scopes is None:
            return cls(user=user, token=token, role=token.role)
        role = "write" if any(s.permission == "write" for s in scopes) else "read"
        return cls(user=user, token=token, role=role, scopes=scopes)

    def discusses(self, namespace: str, repo: tuple[str, str] | None) -> bool:
        """Whether the token may take part in discussions there: a write token (or a browser
        session), or a fine-grained one with `discussion` or `write` on the repo or namespace."""
        if self.scopes is None:
            return self.role == "write"
        return any(
            s.permission in ("discussion", "write") and s.covers(namespace, repo, write=False)
            for s in self.scopes
        )

    def scoped(self, namespace: str, repo: tuple[str, str] | None, *, write: bool) -> bool:
        """Whether the token's scopes allow this (always, for a token without scopes)."""
        if self.scopes is None:
            return True
        return any(s.covers(namespace, repo, write=write) for s in self.scopes)

    @property
    def name(self) -> str | None:
        return self.user.name if self.user else None

    @property
    def is_admin(self) -> bool:
        return bool(self.user and self.user.is_admin)

    def user_namespaces(self, session: Session, *, write: bool) -> set[str]:
        """The namespaces the user may read (or write): their own and their orgs' by role."""
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
            self._contributor_namespaces = set()
            for org_name, role in rows:
                self._read_namespaces.add(org_name)
                if role in ("write", "admin"):
                    self._write_namespaces.add(org_name)
                elif role == "contributor":
                    self._contributor_namespaces.add(org_name)
        return self._write_namespaces if write else self._read_namespaces

    def contributes_to(self, session: Session, namespace: str) -> bool:
        """Whether the user is a contributor of the org: creates repos, writes their own."""
        self.user_namespaces(session, write=True)
        return namespace in self._contributor_namespaces

    def namespaces(self, session: Session, *, write: bool) -> set[str]:
        """The namespaces whose every private repo this caller may read (or write): the
        user's, narrowed to those a fine-grained token names as a whole (for listings)."""
        own = self.user_namespaces(session, write=write)
        if self.scopes is None:
            return own
        named = {
            s.entity
            for s in self.scopes
            if s.repo is None and (s.permission == "write" or not write)
        }
        return own & named


RepoKey = tuple[str, str]  # (type, namespace/name)


def can_read(
    session: Session,
    principal: Principal,
    namespace: str,
    private: bool,
    repo: RepoKey | None = None,
) -> bool:
    if not private:
        return True
    if not principal.scoped(namespace, repo, write=False):
        return False
    return principal.is_admin or namespace in principal.user_namespaces(session, write=False)


def can_write(
    session: Session,
    principal: Principal,
    namespace: str,
    repo: RepoKey | None = None,
    *,
    create: bool = False,
) -> bool:
    """Whether the caller may write repo (or, with create, make a new repo) in namespace."""
    if principal.user is None or principal.role != "write":
        return False
    if not principal.scoped(namespace, repo, write=True):
        return False
    if principal.is_admin or namespace in principal.user_namespaces(session, write=True):
        return True
    if not principal.contributes_to(session, namespace):
        return False
    return create or (repo is not None and _created_by(session, repo, principal.user.id))


def _created_by(session: Session, repo: RepoKey, user_id: int) -> bool:
    namespace, _, name = repo[1].partition("/")
    creator = session.scalar(
        select(Repo.created_by).where(
            Repo.type == repo[0], Repo.namespace == namespace, Repo.name == name
        )
    )
    return creator == user_id


def can_discuss(
    session: Session, principal: Principal, namespace: str, private: bool, repo: RepoKey | None
) -> bool:
    """Whether the caller may open discussions and pull requests on a repo it may read,
    comment, and push to the pull requests it opened (as on the Hub: any signed-in reader)."""
    if principal.user is None or not principal.discusses(namespace, repo):
        return False
    return can_read(session, principal, namespace, private, repo)


def require_upload(
    session: Session, principal: Principal, namespace: str, private: bool, repo: RepoKey | None
) -> None:
    """Uploading objects (LFS, Xet, preupload) to a repo: its writers, and those who may open
    pull requests on it — their objects reach a ref only through a commit to their own pull
    request, checked there."""
    if not can_discuss(session, principal, namespace, private, repo):
        require_write(session, principal, namespace, repo)


def require_write(
    session: Session,
    principal: Principal,
    namespace: str,
    repo: RepoKey | None = None,
    *,
    create: bool = False,
) -> None:
    """Raise the error the Hub gives: 401 anonymous, 403 read token or foreign namespace."""
    if principal.user is None:
        raise Unauthorized("You must be authenticated to perform this action")
    if principal.role != "write":
        raise Forbidden("This token has read access only; a write token is needed for this action")
    if not principal.scoped(namespace, repo, write=True):
        what = f"{repo[1]}" if repo else f"the namespace {namespace!r}"
        raise Forbidden(f"This fine-grained token has no write permission on {what}")
    if not can_write(session, principal, namespace, repo, create=create):
        if repo is not None and principal.contributes_to(session, namespace):
            raise Forbidden(
                f"Contributors of {namespace!r} write only the repos they created; "
                "open a pull request instead"
            )
        raise Forbidden(f"You don't have the rights to write to the namespace {namespace!r}")
