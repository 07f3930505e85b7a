"""Crash safety through the HTTP API (issue 10 §1): huggingface_hub commits (small files, LFS
files through the batch API, deletions) stream into a live `atrium serve` that is SIGKILLed
at a random moment and restarted. After each restart every acknowledged commit is in the
branch's history, its files download with the right hashes, and fsck finds nothing amiss."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.live import LiveServer
from tests.reliability.checks import new_branch, revive, verify_branch
from tests.reliability.crashkit import Job, Zygote, read_acks
from tests.reliability.figures import ACKED, CRASHES, record

FAST_CRASHES = 25  # per backend: the 50 server kills on every run, both backends together
FULL_CRASHES = 100  # the long variant, marked slow


def run_server_crashes(server: LiveServer, zygote: Zygote, count: int, tmp_path: Path) -> None:
    branch = new_branch(server)
    rng = random.Random(f"server-{count}-{branch.repo.id}")
    for iteration in range(count):
        ack_path = tmp_path / f"acks-{iteration}.jsonl"
        job = Job(
            repo_id=branch.repo.id,
            author=branch.author,
            seed=f"s{iteration}",
            commits=100,
            ack_path=str(ack_path),
            lfs_every=2,
            lfs_size=rng.choice([50_000, 2_000_000]),
            endpoint=server.url,
            token=branch.token,
            repo_name=branch.repo.repo_id,
        )
        (pid,) = zygote.start(job)
        time.sleep(rng.uniform(0.3, 3.0))  # a commit takes about a second here
        revive(server)  # SIGKILL, then a fresh process on the same data
        with contextlib.suppress(ProcessLookupError):  # the client, stuck retrying
            os.kill(pid, signal.SIGKILL)
        zygote.wait()
        acks = read_acks(ack_path)
        verify_branch(branch, acks)
        record(CRASHES)
        record(ACKED, len(acks))
    assert branch.acked, "no commit went through: the test exercised nothing"


def test_server_sigkilled_during_http_commits_loses_nothing(
    crash_server: LiveServer, zygote: Zygote, tmp_path: Path
) -> None:
    run_server_crashes(crash_server, zygote, FAST_CRASHES, tmp_path)


@pytest.mark.slow
def test_server_sigkilled_a_hundred_times_during_http_commits_loses_nothing(
    crash_server: LiveServer, zygote: Zygote, tmp_path: Path
) -> None:
    run_server_crashes(crash_server, zygote, FULL_CRASHES, tmp_path)
