"""Derived credentials: what a Xet token or a signed LFS URL was granted from (ARCHITECTURE.md §5).

A derived credential is handed to a client that then calls without the hub token (hf_xet's CAS
calls, huggingface_hub's signed LFS PUTs), so it must carry its own authority. It names:

- the repo by its `uid`, a random identifier that never recurs (a database id does: SQLite
  gives a deleted repo's id to the next repo), so a credential dies with its repo;
- the hub token it came from by the token's digest (never reused, unlike a row id), or, for a
  browser session, the user alone.

`check` runs on every use, against the database as it is now: the repo still exists, the
token is not revoked, the user still exists and may still read (or write) the repo — so a
revocation, a deletion or a repo turned private takes effect on the very next call.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import Token, User
from app.auth.permissions import Principal, can_read, require_upload
from app.db.base import utcnow
from app.errors import Forbidden, RepoNotFound, Unauthorized
from app.gating.service import require_access
from app.repos.models import Repo

SEP = "."


@dataclass(frozen=True)
class Grant:
    repo: str  # Repo.uid
    user: int | None  # User.id; None for an anonymous reader of a public repo
    token: str | None  # Token.digest of the hub token; None for a browser session
    write: bool

    def encode(self) -> str:
        """A compact text form for signed URL fields and token claims."""
        parts = [self.repo, str(self.user or ""), self.token or "", "w" if self.write else "r"]
        return SEP.join(parts)

    @classmethod
    def decode(cls, text: str) -> Grant:
        try:
            repo, user, token, mode = text.split(SEP)
            return cls(repo, int(user) if user else None, token or None, mode == "w")
        except ValueError:
            raise Unauthorized("This credential is malformed; request a new one") from None


def grant(principal: Principal, repo: Repo, *, write: bool) -> Grant:
    """The grant of a credential issued now to principal (already checked) on repo."""
    user = principal.user.id if principal.user is not None else None
    token = principal.token.digest if principal.token is not None else None
    return Grant(repo.uid, user, token, write)


def check(session: Session, granted: Grant, *, write: bool) -> Repo:
    """The granted repo, if the grant still holds for this use; else Unauthorized (the
    credential is dead: its repo, token or user is gone) or the error `get_repo` gives."""
    if write and not granted.write:
        raise Forbidden("This credential is read-only; ask the hub for a write credential")
    repo = session.scalar(select(Repo).where(Repo.uid == granted.repo))
    if repo is None:
        raise Unauthorized("The repository of this credential no longer exists")
    principal = _principal(session, granted)
    key = (repo.type, repo.repo_id)
    if not can_read(session, principal, repo.namespace, repo.private, key):
        raise RepoNotFound(f"Repository not found: {repo.repo_id}")
    if write:  # objects sent for a commit, by a writer or for a pull request
        require_upload(session, principal, repo.namespace, repo.private, key)
    require_access(session, principal, repo)  # a gated repo's content
    return repo


def _principal(session: Session, granted: Grant) -> Principal:
    if granted.user is None:
        return Principal()
    user = session.get(User, granted.user)
    if user is None:
        raise Unauthorized("The user this credential was issued to no longer exists")
    if user.disabled_at is not None:
        raise Unauthorized("The account this credential was issued to is disabled")
    if granted.token is None:
        return Principal(user=user, role="write")  # a browser session acts in person
    token = session.scalar(select(Token).where(Token.digest == granted.token))
    if token is None or token.revoked_at is not None or token.user_id != user.id:
        raise Unauthorized("The token this credential was derived from has been revoked")
    if token.expires_at is not None and token.expires_at <= utcnow():
        raise Unauthorized("The token this credential was derived from has expired")
    return Principal.of_token(user, token)
