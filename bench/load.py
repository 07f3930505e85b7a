"""Bounded load test (issue 10 §10): many concurrent clients on a mixed workload against a
live server on loopback, for a fixed time; it stops by itself.

The mix is what a hub sees: repo info, tree listings, paths-info, small file downloads,
ranged reads of a large file, repo search, and a commit now and then. The baseline is the
same mix from one client in the same run; the figures are errors (goal: none), p50 and p99
under load, and p50 under load as a ratio of the one-client p50.

    python -m bench load                         # 200 clients, 60 s
    ATRIUM_LOAD_CLIENTS=50 ATRIUM_LOAD_SECONDS=20 python -m bench load
    ATRIUM_LOAD_BACKEND=postgres python -m bench load   # PostgreSQL + S3 (moto), pool limits

After the load stops it also measures how long the server takes to answer one request within
a second again (recovery: goal, at once).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.hub.readkit import Owner, make_repo, new_owner
from tests.live import Backend, LiveServer, moto_server, private_server, start_server

CLIENTS = int(os.environ.get("ATRIUM_LOAD_CLIENTS", "200"))
# `python -m bench` asks for small sizes: the same 200 clients, for 20 s instead of 60.
SECONDS = float(
    os.environ.get("ATRIUM_LOAD_SECONDS", "20" if os.environ.get("ATRIUM_BENCH_SMALL") else "60")
)
BASELINE_SECONDS = 5.0
LARGE = 4 * 1024 * 1024

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def p(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def workload(owner: Owner, repo_id: str) -> list[tuple[int, Request]]:
    """(weight, request) pairs of the mix."""
    auth = {"Authorization": f"Bearer {owner.token}"}

    def commit(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        path = f"load/{secrets.token_hex(6)}.txt"
        lines = [
            {"key": "header", "value": {"summary": "load"}},
            {"key": "file", "value": {"path": path, "content": "x", "encoding": "utf-8"}},
        ]
        body = "\n".join(json.dumps(line) for line in lines)
        headers = {**auth, "Content-Type": "application/x-ndjson"}
        return client.post(f"/api/models/{repo_id}/commit/main", content=body, headers=headers)

    def ranged(client: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        start = random.randrange(0, LARGE - 65536)
        headers = {"Range": f"bytes={start}-{start + 65535}"}
        return client.get(f"/{repo_id}/resolve/main/weights.bin", headers=headers)

    return [
        (20, lambda c: c.get(f"/api/models/{repo_id}")),
        (15, lambda c: c.get(f"/api/models/{repo_id}/tree/main")),
        (
            10,
            lambda c: c.post(
                f"/api/models/{repo_id}/paths-info/main", data={"paths": ["config.json"]}
            ),
        ),
        (25, lambda c: c.get(f"/{repo_id}/resolve/main/config.json")),
        (15, ranged),
        (10, lambda c: c.get("/api/models", params={"search": "load", "limit": 20})),
        (2, commit),
    ]


async def client_loop(
    base: str, mix: list[tuple[int, Request]], until: float, tally: Tally
) -> None:
    weights = [w for w, _ in mix]
    requests = [r for _, r in mix]
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        while time.monotonic() < until:
            request = random.choices(requests, weights)[0]
            started = time.perf_counter()
            try:
                response = await request(client)
                if response.status_code >= 400:
                    tally.errors.append(f"{response.request.url.path}: {response.status_code}")
            except httpx.HTTPError as exc:
                tally.errors.append(repr(exc))
                continue
            tally.latencies_ms.append((time.perf_counter() - started) * 1000)


async def run(base: str, mix: list[tuple[int, Request]], clients: int, seconds: float) -> Tally:
    tally = Tally()
    until = time.monotonic() + seconds
    await asyncio.gather(*(client_loop(base, mix, until, tally) for _ in range(clients)))
    return tally


async def recovery(base: str, repo_id: str, token: str) -> float:
    """Seconds from the end of the load until repo info answers 200 within a second."""
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=1.0) as client:
        while time.perf_counter() - started < 120:
            try:
                answer = await client.get(
                    f"/api/models/{repo_id}", headers={"Authorization": f"Bearer {token}"}
                )
                if answer.status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    return float("inf")


@contextmanager
def backend_server(kind: str, folder: Path) -> Iterator[LiveServer]:
    if kind == "sqlite":
        live = start_server(Backend("sqlite", folder))
        try:
            yield live
        finally:
            live.stop()
        return
    with moto_server() as s3, private_server("postgres", folder, s3) as live:
        yield live


def main() -> None:
    kind = os.environ.get("ATRIUM_LOAD_BACKEND", "sqlite")
    with tempfile.TemporaryDirectory() as folder, backend_server(kind, Path(folder)) as live:
        owner = new_owner(live)
        files = {"config.json": b'{"model_type": "bert"}', "README.md": b"# load\n"}
        weights = random.Random(0).randbytes(LARGE)
        make_repo(owner, "load-target", files, {"weights.bin": weights})
        mix = workload(owner, f"{owner.name}/load-target")
        base = asyncio.run(run(live.url, mix, 1, BASELINE_SECONDS))
        loaded = asyncio.run(run(live.url, mix, CLIENTS, SECONDS))
        recovered = asyncio.run(recovery(live.url, f"{owner.name}/load-target", owner.token))
    done = len(loaded.latencies_ms)
    print(
        f"load ({kind}): {CLIENTS} clients for {SECONDS:.0f} s, {done} requests "
        f"({done / SECONDS:.0f}/s)"
    )
    print(f"recovery after the load: {recovered:.2f} s (goal: at once)")
    print(f"one client: p50 {base.p(0.5):.1f} ms, p99 {base.p(0.99):.1f} ms")
    print(
        f"under load: p50 {loaded.p(0.5):.1f} ms, p99 {loaded.p(0.99):.1f} ms, "
        f"mean {statistics.fmean(loaded.latencies_ms or [0]):.1f} ms"
    )
    for error in sorted(set(loaded.errors))[:10]:
        print(f"  error: {error}")
    print(f"load errors: {len(loaded.errors) + len(base.errors)} (goal <= 0)")
    ratio = loaded.p(0.5) / base.p(0.5) if base.p(0.5) else 0.0
    print(f"p50 under load / one-client p50: {ratio:.1f}x ({CLIENTS} clients on 2 cores)")


if __name__ == "__main__":
    main()
