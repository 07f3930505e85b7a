"""Crash safety (issue 10 §1): committers are SIGKILLed at random moments and at chosen points
of a commit; after each crash every ref points to a complete commit whose files download with
the right hashes, every acknowledged commit is in the branch's history, and fsck is clean.

The kills cycle through: a random delay (anywhere), inside the N-th blob write (an object half
written), right before the N-th database commit (objects stored, ref not moved) and right
after it (ref moved, never acknowledged). `atrium fsck` and a restart of the server that was
SIGKILLed too close the test.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.auth.permissions import Principal
from app.auth.service import get_user
from app.repos.fsck import fsck
from app.repos.manage import create_repo
from app.repos.models import Commit, Repo
from app.repos.service import resolve_revision
from tests.live import ROOT, Backend, LiveServer, start_server
from tests.reliability.crashkit import KILL_MODES, Ack, Job, Zygote, read_acks
from tests.reliability.figures import ACKED, CRASHES, record

FAST_CRASHES = 16  # run by default: each kill mode four times
FULL_CRASHES = 64  # the "at least 50", marked slow


@pytest.fixture(scope="module")
def crash_server(backend: Backend) -> Iterator[LiveServer]:
    """A server of this module's own: the test SIGKILLs it, which the shared one must not be."""
    live = start_server(backend)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def zygote(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    log = tmp_path_factory.mktemp("zygote") / "zygote.log"
    forker = Zygote(backend.settings_env(), ROOT, log)
    yield forker
    forker.close()


@dataclass
class Branch:
    """What the test knows about the branch under fire."""

    server: LiveServer
    repo: Repo
    author: str
    head: str
    acked: set[str] = field(default_factory=set)
    verified: set[str] = field(default_factory=set)  # objects fsck checked already


def new_branch(server: LiveServer) -> Branch:
    app = server.app()
    name, _ = server.new_user(f"crash{secrets.token_hex(4)}")
    factory, blobs = app.state.sessionmaker, app.state.blobs
    with factory() as session:
        principal = Principal(user=get_user(session, name), role="write")
    repo = create_repo(factory, blobs, principal, "model", name, "crash-target")
    return Branch(server, repo, name, head_of(server, repo))


def head_of(server: LiveServer, repo: Repo) -> str:
    with server.app().state.sessionmaker() as session:
        fresh = session.get(Repo, repo.id)
        assert fresh is not None
        return resolve_revision(session, fresh, "main")


def history_since(server: LiveServer, head: str, stop: str) -> list[str]:
    """First-parent history from head back to stop (exclusive); fails if stop is not in it,
    which would mean the ref moved backwards and lost a visible commit."""
    shas = []
    with server.app().state.sessionmaker() as session:
        current: str | None = head
        while current != stop:
            assert current is not None, f"{stop} is no longer in the history of {head}"
            shas.append(current)
            row = session.get(Commit, current)
            assert row is not None, f"commit {current} is visible but not indexed"
            current = row.parents[0] if row.parents else None
    return shas


def job_for(branch: Branch, iteration: int, rng: random.Random, ack_path: Path) -> Job:
    mode = KILL_MODES[iteration % len(KILL_MODES)]
    kill_at = {"timer": 0, "put": rng.randint(1, 40), "before_commit": rng.randint(1, 7)}
    return Job(
        repo_id=branch.repo.id,
        author=branch.author,
        seed=f"i{iteration}",
        commits=60 if mode == "timer" else 6,
        ack_path=str(ack_path),
        kill_mode=mode,
        kill_at=kill_at.get(mode, rng.randint(1, 7)),
    )


def crash_once(zygote: Zygote, job: Job, rng: random.Random) -> bool:
    """Run one committer to its death; True when it died by SIGKILL (not by finishing)."""
    pid = zygote.start(job)
    if job.kill_mode == "timer":
        time.sleep(rng.uniform(0.0, 0.6))
        with contextlib.suppress(ProcessLookupError):  # it may have finished first
            os.kill(pid, signal.SIGKILL)
    ended = zygote.wait()
    assert ended["code"] in (0, -1), f"committer failed instead of crashing: {ended}"
    return ended["signal"] == signal.SIGKILL


def verify_after_crash(branch: Branch, acks: list[Ack]) -> None:
    server = branch.server
    head = head_of(server, branch.repo)
    new = set(history_since(server, head, branch.head))
    lost = {ack.sha for ack in acks} - new
    assert not lost, f"acknowledged commits missing from the branch: {lost}"
    app = server.app()
    report = fsck(app.state.sessionmaker, app.state.blobs, verified=branch.verified)
    assert report.ok, report.problems
    for ack in acks:
        check_files_download(server, branch.repo, ack)
    branch.head = head
    branch.acked |= {ack.sha for ack in acks}


def check_files_download(server: LiveServer, repo: Repo, ack: Ack) -> None:
    """Each file of an acknowledged commit downloads at that commit with its own hash."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path, digest in ack.files.items():
            response = client.get(f"/{repo.repo_id}/resolve/{ack.sha}/{path}")
            assert response.status_code == 200, (path, response.text)
            assert hashlib.sha256(response.content).hexdigest() == digest, path


def restart(server: LiveServer) -> LiveServer:
    """SIGKILL the server and start a new one on the same database and store."""
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)
    return start_server(server.backend)


def run_crashes(server: LiveServer, zygote: Zygote, count: int, tmp_path: Path) -> None:
    branch = new_branch(server)
    rng = random.Random(f"crash-{count}-{branch.repo.id}")
    crashes = 0
    for iteration in range(count):
        ack_path = tmp_path / f"acks-{iteration}.jsonl"
        crashes += crash_once(zygote, job_for(branch, iteration, rng, ack_path), rng)
        verify_after_crash(branch, read_acks(ack_path))
    assert crashes >= count * 3 // 4, f"only {crashes} of {count} committers were killed"
    checked = server.cli("fsck")
    assert checked.returncode == 0 and ": ok" in checked.stdout, checked.stdout + checked.stderr
    record(CRASHES, crashes)
    record(ACKED, len(branch.acked))
    reborn = restart(server)
    try:
        info = httpx.get(f"{reborn.url}/api/models/{branch.repo.repo_id}", timeout=30).json()
        assert info["sha"] == branch.head
        server.url, server.proc = reborn.url, reborn.proc
    except BaseException:
        reborn.stop()
        raise
    record(CRASHES)


def test_commits_survive_sigkill_at_any_moment(
    crash_server: LiveServer, zygote: Zygote, tmp_path: Path
) -> None:
    run_crashes(crash_server, zygote, FAST_CRASHES, tmp_path)


@pytest.mark.slow
def test_commits_survive_many_sigkills(
    crash_server: LiveServer, zygote: Zygote, tmp_path: Path
) -> None:
    run_crashes(crash_server, zygote, FULL_CRASHES, tmp_path)
