"""Blob store crash atomicity (issue 10 §1, §3): a large upload (multipart on S3) cut by
SIGKILL at a random moment or half-way leaves nothing visible under its key, and the same
upload retried afterwards succeeds and downloads whole."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from pathlib import Path

import pytest

from tests.live import LiveServer
from tests.reliability.checks import check_interrupted_write, new_branch, verify_branch
from tests.reliability.crashkit import Job, Zygote, read_acks
from tests.reliability.figures import CRASHES, record

LARGE = 20 * 1024 * 1024  # over the S3 store's 8 MiB part size: a multipart upload


@pytest.mark.parametrize("kill", ["half-way", "random"])
def test_an_interrupted_large_upload_is_never_visible_and_a_retry_succeeds(
    server: LiveServer, zygote: Zygote, tmp_path: Path, kill: str
) -> None:
    branch = new_branch(server)
    rng = random.Random(f"{kill}-{branch.repo.id}")
    base = {"repo_id": branch.repo.id, "author": branch.author, "commits": 1}
    big = {"lfs_every": 1, "lfs_size": LARGE, "lfs_seed": kill}
    for attempt in range(2):
        job = Job(
            seed=f"{kill}{attempt}",
            ack_path=str(tmp_path / f"{attempt}.jsonl"),
            kill_mode="put" if kill == "half-way" else "timer",
            kill_at=1,
            **base,  # type: ignore[arg-type]
            **big,  # type: ignore[arg-type]
        )
        (pid,) = zygote.start(job)
        if kill == "random":
            time.sleep(rng.uniform(0.05, 0.8))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        (ended,) = zygote.wait()
        record(CRASHES, ended["signal"] == signal.SIGKILL)
        assert kill == "random" or check_interrupted_write(server, job)
        verify_branch(branch, read_acks(Path(job.ack_path)))
    retry = Job(seed="retry", ack_path=str(tmp_path / "retry.jsonl"), **base, **big)  # type: ignore[arg-type]
    zygote.start(retry)
    assert zygote.wait()[0]["code"] == 0
    acks = read_acks(Path(retry.ack_path))
    assert len(acks) == 1
    verify_branch(branch, acks)
