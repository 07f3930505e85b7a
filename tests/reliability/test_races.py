"""Concurrency (issue 10 §2): many committer processes on one branch at once. Without a
parent commit none is lost and history stays linear; pinned to the same parent exactly one
wins and the rest are refused as stale (412); the same large file uploaded by many at once is
stored once and whole. Committers are separate processes with their own database connections
(crashkit.py), started on the same instant."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import time
from pathlib import Path

import pytest

from app.repos.models import LfsObject
from tests.live import LiveServer
from tests.reliability.checks import Branch, new_branch, verify_branch
from tests.reliability.crashkit import Job, Zygote, content, read_acks
from tests.reliability.figures import ACKED, CRASHES, RACES, STALE_REFUSED, record

START_DELAY_S = 2.0  # time to fork every committer and open its connections
# The 50 clients on every run (1-2 minutes on Postgres+S3); 200 as the slow variant.
CLIENTS = [50, pytest.param(200, marks=pytest.mark.slow)]
HTTP_CLIENTS = 6  # each is a huggingface_hub client: preupload, LFS batch and upload, commit


def race(zygote: Zygote, branch: Branch, ack_path: Path, **job: object) -> list[dict[str, int]]:
    fields: dict[str, object] = {"commits": 1, "lfs_every": 0, **job}
    start = Job(
        repo_id=branch.repo.id,
        author=branch.author,
        seed=ack_path.stem,
        ack_path=str(ack_path),
        start_at=time.time() + START_DELAY_S,
        **fields,  # type: ignore[arg-type]
    )
    zygote.start(start)
    ended = zygote.wait()
    record(RACES, len(ended))
    return ended


@pytest.mark.parametrize("clients", CLIENTS)
def test_concurrent_commits_without_parent_are_all_applied_in_a_line(
    server: LiveServer, zygote: Zygote, tmp_path: Path, clients: int
) -> None:
    branch = new_branch(server)
    ack_path = tmp_path / "free.jsonl"
    ended = race(zygote, branch, ack_path, clients=clients)
    zygote.check(ended)
    acks = read_acks(ack_path)
    assert len(acks) == clients and not any(a.refused for a in acks)
    new = verify_branch(branch, acks)
    assert sorted(new) == sorted(a.sha for a in acks), "a commit appeared that nobody made"
    record(ACKED, len(acks))


@pytest.mark.parametrize("clients", CLIENTS)
def test_concurrent_commits_on_one_parent_one_wins_the_rest_get_412(
    server: LiveServer, zygote: Zygote, tmp_path: Path, clients: int
) -> None:
    branch = new_branch(server)
    ack_path = tmp_path / "pinned.jsonl"
    ended = race(zygote, branch, ack_path, parent_commit=branch.head, clients=clients)
    zygote.check(ended)
    acks = read_acks(ack_path)
    winners = [a for a in acks if not a.refused]
    assert len(acks) == clients and len(winners) == 1
    assert verify_branch(branch, acks) == [winners[0].sha]
    record(STALE_REFUSED, clients - 1)


def test_the_same_large_file_uploaded_by_many_at_once_is_stored_once(
    server: LiveServer, zygote: Zygote, tmp_path: Path
) -> None:
    branch = new_branch(server)
    ack_path = tmp_path / "same.jsonl"
    ended = race(zygote, branch, ack_path, lfs_every=1, lfs_seed="shared", clients=8)
    zygote.check(ended)
    acks = read_acks(ack_path)
    verify_branch(branch, acks)
    oid = hashlib.sha256(content("shared", 0, Job.lfs_size)).hexdigest()
    blobs = server.app().state.blobs
    assert [key for key, _ in blobs.keys(f"lfs/{oid[:2]}")].count(f"lfs/{oid}") == 1
    with server.app().state.sessionmaker() as session:
        assert session.get(LfsObject, oid) is not None
    assert len({digest for a in acks for p, digest in a.files.items() if "weights" in p}) == 1


@pytest.mark.parametrize("clients", [6])
def test_concurrent_committers_killed_together_lose_nothing_acknowledged(
    server: LiveServer, zygote: Zygote, tmp_path: Path, clients: int
) -> None:
    branch = new_branch(server)
    rng = random.Random(branch.repo.id)
    for round_ in range(3):
        ack_path = tmp_path / f"killed-{round_}.jsonl"
        job = Job(
            repo_id=branch.repo.id,
            author=branch.author,
            seed=f"k{round_}",
            commits=40,
            ack_path=str(ack_path),
            clients=clients,
        )
        pids = zygote.start(job)
        time.sleep(rng.uniform(0.3, 1.5))
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        ended = zygote.wait()
        zygote.check(ended, allowed=(0, -1))
        record(CRASHES, sum(e["signal"] == signal.SIGKILL for e in ended))
        record(RACES, clients)
        acks = read_acks(ack_path)
        verify_branch(branch, acks)
        record(ACKED, len(acks))


@pytest.mark.parametrize("pinned", [False, True], ids=["free", "pinned"])
def test_concurrent_http_commits_none_lost_and_stale_parents_get_412(
    server: LiveServer, zygote: Zygote, tmp_path: Path, pinned: bool
) -> None:
    """The same races through huggingface_hub and the live server's commit route."""
    branch = new_branch(server)
    ack_path = tmp_path / "http.jsonl"
    http = {"endpoint": server.url, "token": branch.token, "repo_name": branch.repo.repo_id}
    parent = {"parent_commit": branch.head} if pinned else {}
    ended = race(zygote, branch, ack_path, clients=HTTP_CLIENTS, **http, **parent)
    zygote.check(ended)
    acks = read_acks(ack_path)
    winners = [a for a in acks if not a.refused]
    assert len(acks) == HTTP_CLIENTS and len(winners) == (1 if pinned else HTTP_CLIENTS)
    assert sorted(verify_branch(branch, acks)) == sorted(a.sha for a in winners)
    record(STALE_REFUSED, HTTP_CLIENTS - len(winners))
    record(ACKED, len(winners))
