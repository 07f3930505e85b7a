"""Bounded load test (issue 10 §10, issue 16 §2): many concurrent clients on a mixed workload
against a live server on loopback, for a fixed time at each level; it stops by itself.

The mix is what a hub sees: repo info, tree listings, paths-info, small file downloads,
ranged reads of a large file, repo search, and a commit now and then. The baseline is the
same mix from one client in the same run. At 64, 256 and 1,000 concurrent clients it prints
throughput, p50/p99, the share of answers that were 503 (the server saying "retry later",
which huggingface_hub does) and the count of other 5xx (goal: none), and the slowest
`/health` seen while the load ran and right after (goal: within 1 s). Then the 256-client
level again with 50 uploads held open, trickling a byte every half second: its throughput as
a ratio of the same level without them (goal: at least 0.8x).

    python -m bench load                                # 64, 256, 1000 clients, 30 s each
    ATRIUM_LOAD_LEVELS=50 ATRIUM_LOAD_SECONDS=20 python -m bench load
    ATRIUM_LOAD_BACKEND=postgres python -m bench load   # PostgreSQL + S3 (moto)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.hub.readkit import Owner, make_repo, new_owner
from tests.live import Backend, LiveServer, moto_server, private_server, start_server
from tests.reliability.slowkit import trickling

LEVELS = [int(n) for n in os.environ.get("ATRIUM_LOAD_LEVELS", "64,256,1000").split(",")]
# `python -m bench` asks for small sizes: the same levels, for 10 s each instead of 30.
SECONDS = float(
    os.environ.get("ATRIUM_LOAD_SECONDS", "10" if os.environ.get("ATRIUM_BENCH_SMALL") else "30")
)
SLOW_UPLOADS = 50
SLOW_LEVEL = 256
BASELINE_SECONDS = 5.0
LARGE = 4 * 1024 * 1024

Request = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


@dataclass
class Tally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    health_ms: list[float] = field(default_factory=list)

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    @property
    def unavailable(self) -> int:
        return self.statuses[503]

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500 and status != 503)

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
    client: httpx.AsyncClient, mix: list[tuple[int, Request]], until: float, tally: Tally
) -> None:
    weights = [w for w, _ in mix]
    requests = [r for _, r in mix]
    while time.monotonic() < until:
        request = random.choices(requests, weights)[0]
        started = time.perf_counter()
        try:
            response = await request(client)
        except httpx.HTTPError as exc:
            tally.errors.append(repr(exc))
            continue
        tally.statuses[response.status_code] += 1
        if response.status_code >= 400 and response.status_code != 503:
            tally.errors.append(f"{response.request.url.path}: {response.status_code}")
        tally.latencies_ms.append((time.perf_counter() - started) * 1000)


def probe_health(base: str, stop: threading.Event, tally: Tally) -> None:
    """`/health` four times a second on a connection of its own, from a thread of its own:
    the load's coroutines must not delay the probe on the client side."""
    with httpx.Client(base_url=base, timeout=60) as client:
        while not stop.wait(0.25):
            started = time.perf_counter()
            try:
                client.get("/health")
            except httpx.HTTPError as exc:
                tally.errors.append(f"health: {exc!r}")
                continue
            tally.health_ms.append((time.perf_counter() - started) * 1000)


async def run(base: str, mix: list[tuple[int, Request]], clients: int, seconds: float) -> Tally:
    tally = Tally()
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    stop = threading.Event()
    prober = threading.Thread(target=probe_health, args=(base, stop, tally), daemon=True)
    prober.start()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
            await asyncio.gather(*(client_loop(client, mix, until, tally) for _ in range(clients)))
    finally:
        stop.set()
        prober.join()
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


def report(label: str, tally: Tally, seconds: float, recovered: float) -> None:
    done = tally.answered
    unavailable = 100 * tally.unavailable / done if done else 0.0
    print(
        f"{label}: {done / seconds:.0f} requests/s, p50 {tally.p(0.5):.0f} ms, "
        f"p99 {tally.p(0.99):.0f} ms, 503 {unavailable:.1f}%, client errors "
        f"{len([e for e in tally.errors if not e.endswith(': 503')])}"
    )
    for error in sorted(set(tally.errors))[:5]:
        print(f"  error: {error}")
    print(f"answers 500-599 but 503, at {label}: {tally.server_errors} (goal <= 0)")
    slowest = max(tally.health_ms or [0.0]) / 1000
    print(f"slowest health check during the load, at {label}: {slowest:.2f} s (goal <= 1 s)")
    print(f"first repo info within 1 s after the load, at {label}: {recovered:.2f} s (goal <= 1 s)")


def main() -> None:
    kind = os.environ.get("ATRIUM_LOAD_BACKEND", "sqlite")
    with tempfile.TemporaryDirectory() as folder, backend_server(kind, Path(folder)) as live:
        owner = new_owner(live)
        files = {"config.json": b'{"model_type": "bert"}', "README.md": b"# load\n"}
        weights = random.Random(0).randbytes(LARGE)
        make_repo(owner, "load-target", files, {"weights.bin": weights})
        repo_id = f"{owner.name}/load-target"
        mix = workload(owner, repo_id)
        base = asyncio.run(run(live.url, mix, 1, BASELINE_SECONDS))
        print(f"load ({kind}), one client: p50 {base.p(0.5):.1f} ms, p99 {base.p(0.99):.1f} ms")
        rates: dict[int, float] = {}
        for clients in LEVELS:
            loaded = asyncio.run(run(live.url, mix, clients, SECONDS))
            recovered = asyncio.run(recovery(live.url, repo_id, owner.token))
            report(f"{clients} clients", loaded, SECONDS, recovered)
            rates[clients] = loaded.answered / SECONDS
        level = SLOW_LEVEL if SLOW_LEVEL in rates else LEVELS[0]
        with trickling(live, repo_id, owner.token, SLOW_UPLOADS, addresses=4):
            slowed = asyncio.run(run(live.url, mix, level, SECONDS))
            recovered = asyncio.run(recovery(live.url, repo_id, owner.token))
        label = f"{level} clients + {SLOW_UPLOADS} slow uploads"
        report(label, slowed, SECONDS, recovered)
        ratio = slowed.answered / SECONDS / rates[level] if rates[level] else 0.0
        print(f"throughput with {SLOW_UPLOADS} slow uploads / without: {ratio:.2f}x (goal >= 0.8x)")


if __name__ == "__main__":
    main()
