"""Read API latency on a 10,000-file repo, local backend (goal: p50 < 20 ms for model_info and
for a full recursive tree listing). Prints p50s and their ratio to `GET /health` measured in
the same run, so a slow machine shows as a slow baseline, not as a regression.

    .venv/bin/python -m bench.hub_read
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.hub.readkit import make_repo, new_owner
from tests.live import Backend, start_server

FILES = 10_000
RUNS = 30


def p50_ms(call: Callable[[], object], runs: int = RUNS) -> float:
    call()  # the first call fills the tree cache; the goal is about warm answers
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def whole_tree(client: httpx.Client, url: str) -> int:
    count, next_url = 0, url
    while next_url:
        answer = client.get(next_url)
        count += len(answer.json())
        next_url = answer.links.get("next", {}).get("url")
    return count


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        live = start_server(Backend("sqlite", Path(folder)))
        try:
            owner = new_owner(live)
            files = {f"d{i // 100:03d}/f{i % 100:03d}.txt": str(i).encode() for i in range(FILES)}
            make_repo(owner, "big", files)
            client = httpx.Client()
            api = f"{live.url}/api/models/{owner.name}/big"
            baseline = p50_ms(lambda: client.get(f"{live.url}/health"))
            cases = {
                "model_info": lambda: client.get(api),
                "model_info blobs=true": lambda: client.get(f"{api}?blobs=true"),
                "recursive tree, all pages": lambda: whole_tree(
                    client, f"{api}/tree/main?recursive=true&expand=false"
                ),
                "tree of a folder, expand=true": lambda: client.get(
                    f"{api}/tree/main/d001?expand=true"
                ),
                "HEAD resolve": lambda: client.head(
                    f"{live.url}/{owner.name}/big/resolve/main/d001/f001.txt"
                ),
            }
            print(f"baseline GET /health p50 {baseline:.2f} ms")
            for name, call in cases.items():
                value = p50_ms(call)
                print(f"{name:32s} p50 {value:7.2f} ms  ({value / baseline:5.1f}x baseline)")
        finally:
            live.stop()


if __name__ == "__main__":
    main()
