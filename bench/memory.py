"""Server memory during a large download (issue 11): the API process's RSS stays flat while
it streams an LFS file many times its own size. The baseline is the same process's RSS just
before the download, measured in the same run; the figure is the peak growth over it.

    ATRIUM_BENCH_DOWNLOAD_MB=5120 ATRIUM_BENCH_STORES=local,s3 python -m bench.memory
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psutil

from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.repos.commits import AddLfsFile, Author, create_commit
from app.repos.models import LfsObject, RepoLfsObject
from bench.report import goal_line
from tests.hub.readkit import make_repo, new_owner
from tests.live import AWS_ENV, Backend, LiveServer, moto_server, start_server

MB = 1024 * 1024
BLOCK = os.urandom(4 * MB)  # repeated: incompressible, and cheap to make a file of any size
SAMPLE_S = 0.02


def content(size: int) -> Iterator[bytes]:
    left = size
    while left:
        piece = BLOCK[: min(left, len(BLOCK))]
        left -= len(piece)
        yield piece


def add_big_file(live: LiveServer, size: int) -> tuple[str, str]:
    """A repo holding one LFS file of `size` bytes, streamed into the store: (URL, token)."""
    owner = new_owner(live)
    repo, _ = make_repo(owner, "big-download", {"README.md": b"# big\n"})
    app = live.app()
    digest = hashlib.sha256()
    for piece in content(size):
        digest.update(piece)
    oid = digest.hexdigest()
    app.state.blobs.put(f"lfs/{oid}", content(size), sha256=oid, size=size)
    with write_transaction(app.state.sessionmaker) as session:
        insert_ignore(session, LfsObject, [{"oid": oid, "size": size}], ["oid"])
        insert_ignore(
            session, RepoLfsObject, [{"repo_id": repo.id, "oid": oid}], ["repo_id", "oid"]
        )
    create_commit(
        app.state.sessionmaker,
        app.state.blobs,
        repo.id,
        "main",
        [AddLfsFile("big.bin", oid, size)],
        author=Author(owner.name, f"{owner.name}@bench"),
        title="add big.bin",
    )
    return f"{live.url}/{repo.repo_id}/resolve/main/big.bin", owner.token


def peak_rss_during(pid: int, command: list[str]) -> tuple[float, float, float]:
    """(RSS before, peak RSS during, seconds) of process pid while command runs, in MB."""
    server = psutil.Process(pid)
    before = server.memory_info().rss / MB
    peak = before
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.memory_info().rss / MB)
            time.sleep(SAMPLE_S)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        subprocess.run(command, check=True)
    finally:
        done.set()
        sampler.join()
    return before, peak, time.perf_counter() - started


def bench_store(store: str, root: Path, size: int, stack: ExitStack) -> tuple[float, float, float]:
    env = {}
    if store == "s3":
        env = {
            "ATRIUM_STORAGE_URL": "s3://bench-memory",
            "ATRIUM_S3_ENDPOINT_URL": stack.enter_context(moto_server()),
            **AWS_ENV,
        }
        os.environ.update(AWS_ENV)
    live = start_server(Backend(store, root / store, env))
    stack.callback(live.stop)
    url, token = add_big_file(live, size)
    curl = ["curl", "-sSf", "-H", f"authorization: Bearer {token}", "-o", "/dev/null", url]
    return peak_rss_during(live.proc.pid, curl)


def main() -> None:
    size = int(os.environ.get("ATRIUM_BENCH_DOWNLOAD_MB", "5120")) * MB
    stores = [s.strip() for s in os.environ.get("ATRIUM_BENCH_STORES", "local,s3").split(",")]
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        for store in stores:
            before, peak, seconds = bench_store(store, Path(folder), size, stack)
            mb = size / MB
            print(f"\n== {store} store: {mb:.0f} MB download, {mb / seconds:.0f} MB/s ==")
            print(f"server RSS before {before:.1f} MB, peak during {peak:.1f} MB")
            growth = peak - before
            goal_line(f"{store} store, server RSS growth in the download", growth, "MB", "<", 100)
            goal_line(f"{store} store, RSS growth / file size", 100 * growth / mb, "%", "<=", 2)


if __name__ == "__main__":
    main()
