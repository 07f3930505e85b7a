"""Metadata operations at scale (issue 11): search, listing and model_info p50/p99 on a hub of
10,000 repos and 100,000 files, as ratios against the same requests on a small hub (as many
repos as requests) served by the same code in the same run. Each request names a repo not
asked for before, in both hubs, so neither answers from a warm per-repo cache. Listing reads
database indexes, so the goal is that the bigger hub answers within 2x (p50) of the small one.

The big hub's rows are bulk-inserted (users, repos, real git commit and tree ids, the file
index, refs) rather than committed one by one: the benchmark is about reads, and 10,000
commits through the API would take longer than the whole suite's budget.

    ATRIUM_BENCH_REPOS=10000 ATRIUM_BENCH_BACKEND=sqlite|postgres python -m bench.metadata_scale
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from dulwich.objects import Blob, Tree
from sqlalchemy import insert

from app.auth.models import User
from app.db.engine import write_transaction
from app.repos.commits import Author, commit_row, make_commit_object
from app.repos.gitobjects import MODE_FILE
from app.repos.models import Commit, Ref, Repo, RepoCommit, TreeEntry
from bench.report import goal_line
from tests.live import (
    AWS_ENV,
    SHARED_SECRET_ENV,
    Backend,
    LiveServer,
    moto_server,
    postgres_database,
    start_server,
)

FILES_PER_REPO = 10
NAMESPACES = 100
REQUESTS = int(os.environ.get("ATRIUM_BENCH_REQUESTS", "150"))
WORDS = ["bert", "llama", "vision", "audio", "tiny", "base", "large", "chat", "code", "math"]
INSERT_BATCH = 2000


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p99_ms: float


def _latency(samples: list[float]) -> Latency:
    samples = sorted(samples)
    return Latency(
        statistics.median(samples), samples[min(len(samples) - 1, len(samples) * 99 // 100)]
    )


def measure_pair(
    small: Callable[[int], object], big: Callable[[int], object], runs: int = REQUESTS
) -> tuple[Latency, Latency]:
    """Alternate the two hubs request by request, so that load from elsewhere on the machine
    slows both alike and cancels out of their ratio."""
    for i in range(5):
        small(i), big(i)  # warm the connections, as a running hub has them
    times: tuple[list[float], list[float]] = ([], [])
    order = random.Random(11)
    for i in range(5, runs + 5):
        sides = [(0, small), (1, big)]
        order.shuffle(sides)  # neither hub always goes first
        for side, call in sides:
            started = time.perf_counter()
            call(i)
            times[side].append((time.perf_counter() - started) * 1000)
    return _latency(times[0]), _latency(times[1])


def repo_name(index: int) -> str:
    return f"{WORDS[index % 10]}-{WORDS[(index // 10) % 10]}-{index:05d}"


def _repo_rows(count: int, now_s: float) -> tuple[list[dict[str, Any]], list[Any]]:
    """Repo rows and, per repo, its commit object and file index rows (real git ids)."""
    repos, commits = [], []
    author = Author("bench", "bench@users.atrium")
    for index in range(count):
        name = repo_name(index)
        tree = Tree()
        entries = []
        for f in range(FILES_PER_REPO):
            data = f"{name} file {f}\n".encode()
            blob = Blob.from_string(data)
            path = f"file-{f}.txt"
            tree.add(path.encode(), MODE_FILE, blob.id)
            entries.append({"name": path, "oid": blob.id.decode(), "size": len(data)})
        commit = make_commit_object(tree.id.decode(), [], author, f"create {name}", "")
        commits.append((commit, tree.id.decode(), entries))
        repos.append(
            {
                "type": "model",
                "namespace": f"org{index % NAMESPACES:03d}",
                "name": name,
                "private": False,
                "settings": {},
                "downloads": (index * 7919) % 100_000,
                "likes": index % 500,
                "tags": [WORDS[index % 10], "bench"],
                "pipeline_tag": "text-generation" if index % 2 else "fill-mask",
                "library_name": "transformers",
                "used_storage": 1000,
            }
        )
    return repos, commits


def populate(live: LiveServer, count: int) -> list[str]:
    """Bulk-insert `count` public repos of FILES_PER_REPO files each; returns their ids."""
    app = live.app()
    repos, commits = _repo_rows(count, time.time())
    with write_transaction(app.state.sessionmaker) as session:
        session.execute(insert(User), [{"name": f"org{n:03d}"} for n in range(NAMESPACES)])
        ids: list[int] = []
        for start in range(0, count, INSERT_BATCH):
            result = session.execute(
                insert(Repo).returning(Repo.id, sort_by_parameter_order=True),
                repos[start : start + INSERT_BATCH],
            )
            ids.extend(result.scalars())
        for start in range(0, count, INSERT_BATCH):
            chunk = list(
                zip(
                    ids[start : start + INSERT_BATCH],
                    commits[start : start + INSERT_BATCH],
                    strict=True,
                )
            )
            session.execute(insert(Commit), [_columns(commit_row(c)) for _, (c, _, _) in chunk])
            session.execute(
                insert(RepoCommit),
                [{"repo_id": rid, "commit_sha": c.id.decode()} for rid, (c, _, _) in chunk],
            )
            session.execute(
                insert(Ref),
                [
                    {"repo_id": rid, "name": "refs/heads/main", "commit_sha": c.id.decode()}
                    for rid, (c, _, _) in chunk
                ],
            )
            session.execute(
                insert(TreeEntry),
                [
                    {"tree_sha": tree, "kind": "blob", "mode": MODE_FILE, **entry}
                    for _, (_, tree, entries) in chunk
                    for entry in entries
                ],
            )
    return [f"{r['namespace']}/{r['name']}" for r in repos]


def _columns(row: Commit) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in Commit.__table__.columns}


@contextmanager
def hub(kind: str, root: Path, stack: ExitStack) -> Iterator[LiveServer]:
    if kind == "sqlite":
        backend = Backend("sqlite", root)
    else:
        endpoint = stack.enter_context(moto_server())
        os.environ.update(AWS_ENV)
        backend = Backend(
            "postgres",
            root,
            {
                "ATRIUM_DATABASE_URL": stack.enter_context(postgres_database()),
                "ATRIUM_STORAGE_URL": f"s3://bench-{root.name.lower()}",
                "ATRIUM_S3_ENDPOINT_URL": endpoint,
                **AWS_ENV,
                **SHARED_SECRET_ENV,
            },
        )
    live = start_server(backend)
    try:
        yield live
    finally:
        live.stop()


Operation = Callable[[httpx.Client, list[str], int], httpx.Response]
OPERATIONS: dict[str, Operation] = {
    "GET /health (baseline)": lambda c, ids, i: c.get("/health"),
    "model_info": lambda c, ids, i: c.get(f"/api/models/{ids[i]}"),
    "search ?search=word, 20 results": lambda c, ids, i: c.get(
        "/api/models", params={"search": WORDS[i % 10], "limit": 20}
    ),
    "list ?sort=downloads, 100 results": lambda c, ids, i: c.get(
        "/api/models", params={"sort": "downloads", "limit": 100}
    ),
    "list ?author=ns, 50 results": lambda c, ids, i: c.get(
        "/api/models", params={"author": f"org{i % NAMESPACES:03d}", "limit": 50}
    ),
    "tree of a repo": lambda c, ids, i: c.get(f"/api/models/{ids[i]}/tree/main"),
}


def caller(live: LiveServer, repo_ids: list[str], operation: Operation) -> Callable[[int], object]:
    client = httpx.Client(base_url=live.url, timeout=30)
    ids = random.Random(7).sample(repo_ids, REQUESTS + 5)  # each repo asked for once

    def call(i: int) -> object:
        return operation(client, ids, i).raise_for_status()

    return call


def main() -> None:
    count = int(os.environ.get("ATRIUM_BENCH_REPOS", "10000"))
    kind = os.environ.get("ATRIUM_BENCH_BACKEND", "sqlite")
    small_size = REQUESTS + 5
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        hubs = {}
        for label, size in (("small", small_size), ("big", count)):
            live = stack.enter_context(hub(kind, Path(folder) / label, stack))
            started = time.perf_counter()
            hubs[label] = (live, populate(live, size))
            print(
                f"{label} hub: {size} repos, {size * FILES_PER_REPO} files inserted in "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
        results = {
            name: measure_pair(*(caller(live, ids, op) for live, ids in hubs.values()))
            for name, op in OPERATIONS.items()
        }
    print(f"\n== metadata at scale, {kind} backend, {count} repos vs {small_size} ==")
    print(f"{'operation':36s} {'small p50':>10s} {'big p50':>9s} {'big p99':>9s}")
    for name, (small, big) in results.items():
        print(f"{name:36s} {small.p50_ms:8.2f}ms {big.p50_ms:7.2f}ms {big.p99_ms:7.2f}ms")
    for name, (small, big) in results.items():
        if "baseline" not in name:
            label = f"{name} p50, {count} repos / {small_size} repos"
            goal_line(label, big.p50_ms / small.p50_ms, "x", "<=", 2)


if __name__ == "__main__":
    main()
