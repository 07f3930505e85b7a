"""What must hold after any crash or race, checked from the test: the branch's history kept
every acknowledged commit, every object is whole (fsck), every acknowledged file downloads
with its hash."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field

import httpx

from app.auth.permissions import Principal
from app.auth.service import get_user
from app.repos.fsck import fsck
from app.repos.manage import create_repo
from app.repos.models import Commit, Repo
from app.repos.service import resolve_revision
from tests.live import LiveServer
from tests.reliability.crashkit import Ack


@dataclass
class Branch:
    """What the test knows about the branch under fire."""

    server: LiveServer
    repo: Repo
    author: str
    head: str
    acked: set[str] = field(default_factory=set)
    verified: set[str] = field(default_factory=set)  # objects fsck checked already


def new_branch(server: LiveServer, name: str = "target") -> Branch:
    app = server.app()
    user, _ = server.new_user(f"rel{secrets.token_hex(4)}")
    factory, blobs = app.state.sessionmaker, app.state.blobs
    with factory() as session:
        principal = Principal(user=get_user(session, user), role="write")
    repo = create_repo(factory, blobs, principal, "model", user, name)
    return Branch(server, repo, user, head_of(server, repo))


def head_of(server: LiveServer, repo: Repo) -> str:
    with server.app().state.sessionmaker() as session:
        fresh = session.get(Repo, repo.id)
        assert fresh is not None
        return resolve_revision(session, fresh, "main")


def history_since(server: LiveServer, head: str, stop: str) -> list[str]:
    """First-parent history from head back to stop (exclusive), newest first; fails if stop
    is not in it, which would mean the ref moved backwards and lost a visible commit."""
    shas = []
    with server.app().state.sessionmaker() as session:
        current: str | None = head
        while current != stop:
            assert current is not None, f"{stop} is no longer in the history of {head}"
            shas.append(current)
            row = session.get(Commit, current)
            assert row is not None, f"commit {current} is visible but not indexed"
            assert len(row.parents) <= 1, f"commit {current} is a merge: history is not linear"
            current = row.parents[0] if row.parents else None
    return shas


def verify_branch(branch: Branch, acks: list[Ack]) -> list[str]:
    """Check every invariant after a crash or race; returns the new commits, newest first."""
    server = branch.server
    head = head_of(server, branch.repo)
    new = history_since(server, head, branch.head)
    lost = {ack.sha for ack in acks if not ack.refused} - set(new)
    assert not lost, f"acknowledged commits missing from the branch: {lost}"
    app = server.app()
    report = fsck(app.state.sessionmaker, app.state.blobs, verified=branch.verified)
    assert report.ok, report.problems
    for ack in acks:
        check_files_download(server, branch.repo, ack)
    branch.head = head
    branch.acked |= {ack.sha for ack in acks if not ack.refused}
    return new


def check_files_download(server: LiveServer, repo: Repo, ack: Ack) -> None:
    """Each file of an acknowledged commit downloads at that commit with its own hash."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path, digest in ack.files.items():
            response = client.get(f"/{repo.repo_id}/resolve/{ack.sha}/{path}")
            assert response.status_code == 200, (path, response.text)
            assert hashlib.sha256(response.content).hexdigest() == digest, path
