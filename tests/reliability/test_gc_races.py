"""`atrium gc` while commits run (issue 10 §1): crashed committers leave garbage (objects
written, ref never moved); gc then sweeps over and over while other committers stream
commits with LFS files into the same repo. It must delete the garbage and nothing else:
every acknowledged commit stays complete (fsck from scratch) and downloads whole."""

from __future__ import annotations

import os
import time
from pathlib import Path

from app.maintenance import collect_garbage, sweeper_lock
from tests.live import LiveServer
from tests.reliability.checks import new_branch, verify_branch
from tests.reliability.crashkit import Job, Zygote, read_acks
from tests.reliability.figures import ACKED, CRASHES, RACES, record

GRACE_S = 8.0  # far longer than a committer's LFS upload takes to reach its commit
SETTLE_S = 1.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_gc_during_commits_deletes_garbage_and_nothing_else(
    server: LiveServer, zygote: Zygote, tmp_path: Path
) -> None:
    branch = new_branch(server)
    base = {"repo_id": branch.repo.id, "author": branch.author, "lfs_every": 2}
    for n in range(3):  # garbage: objects and LFS uploads whose commit never happened
        ack = tmp_path / f"garbage-{n}.jsonl"
        job = Job(
            seed=f"g{n}",
            commits=6,
            ack_path=str(ack),
            kill_mode="before_commit",
            kill_at=2 + n,
            **base,
        )  # type: ignore[arg-type]
        zygote.start(job)
        record(CRASHES, zygote.wait()[0]["signal"] == 9)
        verify_branch(branch, read_acks(ack))
    time.sleep(GRACE_S)  # the garbage is old enough to go

    ack = tmp_path / "live.jsonl"
    pids = zygote.start(Job(seed="live", commits=10, ack_path=str(ack), clients=2, **base))  # type: ignore[arg-type]
    app = server.app()
    deleted: list[str] = []
    sweeps = 0
    settings = app.state.settings
    while any(alive(pid) for pid in pids) or sweeps == 0:
        with sweeper_lock(app.state.engine, settings.data_dir):
            report = collect_garbage(
                app.state.sessionmaker, app.state.blobs, grace_s=GRACE_S, settle_s=SETTLE_S
            )
        deleted += report.deleted
        sweeps += 1
    ended = zygote.wait()
    zygote.check(ended)
    assert deleted, "gc deleted nothing: the test exercised no sweep"
    branch.verified = set()  # re-check every object from scratch after the sweeps
    acks = read_acks(ack)
    assert len(acks) == 20
    verify_branch(branch, acks)
    record(RACES, sweeps)
    record(ACKED, len(acks))
