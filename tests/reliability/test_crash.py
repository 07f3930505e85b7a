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
import os
import random
import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer
from tests.reliability.checks import (
    Branch,
    check_interrupted_write,
    new_branch,
    revive,
    verify_branch,
)
from tests.reliability.crashkit import KILL_MODES, Job, Zygote, read_acks
from tests.reliability.figures import ACKED, CRASHES, record

FAST_CRASHES = 52  # the "at least 50" on each backend, each kill mode 13 times
FULL_CRASHES = 200  # the long variant, marked slow


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
    (pid,) = zygote.start(job)
    if job.kill_mode == "timer":
        time.sleep(rng.uniform(0.0, 0.6))
        with contextlib.suppress(ProcessLookupError):  # it may have finished first
            os.kill(pid, signal.SIGKILL)
    (ended,) = zygote.wait()
    assert ended["code"] in (0, -1), f"committer failed instead of crashing: {ended}"
    return ended["signal"] == signal.SIGKILL


def run_crashes(server: LiveServer, zygote: Zygote, count: int, tmp_path: Path) -> None:
    branch = new_branch(server)
    rng = random.Random(f"crash-{count}-{branch.repo.id}")
    crashes = 0
    for iteration in range(count):
        ack_path = tmp_path / f"acks-{iteration}.jsonl"
        job = job_for(branch, iteration, rng, ack_path)
        crashes += crash_once(zygote, job, rng)
        check_interrupted_write(server, job)
        verify_branch(branch, read_acks(ack_path))
    assert crashes >= count * 3 // 4, f"only {crashes} of {count} committers were killed"
    checked = server.cli("fsck")
    assert checked.returncode == 0 and ": ok" in checked.stdout, checked.stdout + checked.stderr
    record(CRASHES, crashes)
    record(ACKED, len(branch.acked))
    revive(server)
    info = httpx.get(f"{server.url}/api/models/{branch.repo.repo_id}", timeout=30).json()
    assert info["sha"] == branch.head
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
