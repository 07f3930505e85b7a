"""What must hold after any crash or race, checked from the test: the branch's history kept
every acknowledged commit, every object is whole (fsck), every acknowledged file downloads
with its hash."""

from __future__ import annotations

import hashlib
import secrets
import signal
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.auth.permissions import Principal
from app.auth.service import get_user
from app.blobs.base import read_all
from app.repos.fsck import fsck
from app.repos.gitobjects import load_object
from app.repos.manage import create_repo
from app.repos.models import Commit, Repo
from app.repos.service import resolve_revision
from tests.live import LiveServer, start_server
from tests.reliability.crashkit import Ack, Job, dying_key_path
from tests.reliability.figures import PARTIAL_BLOBS, record


@dataclass
class Branch:
    """What the test knows about the branch under fire."""

    server: LiveServer
    repo: Repo
    author: str
    token: str
    head: str
    acked: set[str] = field(default_factory=set)
    verified: set[str] = field(default_factory=set)  # objects fsck checked already


def new_branch(server: LiveServer, name: str = "target") -> Branch:
    app = server.app()
    user, token = server.new_user(f"rel{secrets.token_hex(4)}")
    factory, blobs = app.state.sessionmaker, app.state.blobs
    with factory() as session:
        principal = Principal(user=get_user(session, user), role="write")
    repo = create_repo(factory, blobs, principal, "model", user, name)
    return Branch(server, repo, user, token, head_of(server, repo))


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


def check_interrupted_write(server: LiveServer, job: Job) -> bool:
    """A blob write cut by SIGKILL left nothing under its key, or the whole object (a twin
    write of the same content may have finished): never a part. True if there was one."""
    noted = Path(dying_key_path(job))
    if not noted.exists():
        return False
    key = noted.read_text()
    blobs = server.app().state.blobs
    if blobs.size(key) is not None:
        kind, _, name = key.partition("/")
        if kind == "git":
            assert load_object(blobs, name).id.decode() == name, f"{key} is partial"
        else:
            assert hashlib.sha256(read_all(blobs, key)).hexdigest() == name, f"{key} is partial"
    record(PARTIAL_BLOBS)
    return True


def revive(server: LiveServer) -> None:
    """SIGKILL the server process and start a new one on the same database and store, in
    place (the same LiveServer now points at the new process)."""
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    reborn = start_server(server.backend)
    server.url, server.proc, server.log_path = reborn.url, reborn.proc, reborn.log_path
