"""Browser pages of 10,000-file repos (100 folders of 100, and all 10,000 at the root), local
backend (goal: the card page p50 < 50 ms).

Times are whole HTTP round trips on loopback, so they bound the server's time from above.
Each p50 is printed with its ratio to `GET /health` measured in the same run, so a slow
machine shows as a slow baseline, not as a regression. The first (cold) request of each page
is printed too: it fills the tree and card caches that later requests read.

    .venv/bin/python -m bench.web_pages
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
RUNS = 50
GOAL_CARD_P50_MS = 50.0
CARD = (
    b"---\nlicense: apache-2.0\nlibrary_name: transformers\npipeline_tag: fill-mask\n"
    b"language: [en, fr]\ndatasets: [wiki]\ntags: [bench]\n---\n"
    + b"# Big model\n\n"
    + b"".join(
        b"## Section %d\n\nSome *text* with a [link](d%03d/f000.txt).\n\n"
        b"| k | v |\n|---|---|\n| a | %d |\n\n```python\nx = %d\n```\n\n" % (i, i, i, i)
        for i in range(40)
    )
)


def timed(call: Callable[[], httpx.Response]) -> float:
    started = time.perf_counter()
    answer = call()
    elapsed = (time.perf_counter() - started) * 1000
    answer.raise_for_status()
    return elapsed


def p50_ms(call: Callable[[], httpx.Response], runs: int = RUNS) -> float:
    return statistics.median(timed(call) for _ in range(runs))


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        live = start_server(Backend("sqlite", Path(folder)))
        try:
            owner = new_owner(live)
            files = {f"d{i // 100:03d}/f{i % 100:03d}.txt": str(i).encode() for i in range(FILES)}
            make_repo(owner, "big", {**files, "README.md": CARD})
            flat = {f"f{i:05d}.txt": str(i).encode() for i in range(FILES)}
            make_repo(owner, "flat", {**flat, "README.md": CARD})
            client = httpx.Client(base_url=live.url)
            repo = f"/{owner.name}/big"
            pages = {
                "card": repo,
                "tree, root (100 folders)": f"{repo}/tree/main",
                "tree, folder of 100 files": f"{repo}/tree/main/d042",
                "blob": f"{repo}/blob/main/d042/f007.txt",
                "history": f"{repo}/commits/main",
                "search": f"/models?search={owner.name}",
                "flat repo: card": f"/{owner.name}/flat",
                "flat repo: tree, 1st page": f"/{owner.name}/flat/tree/main",
                "flat repo: tree, last page": f"/{owner.name}/flat/tree/main?p=51",
            }
            baseline = p50_ms(lambda: client.get("/health"))
            print(f"{FILES} files; baseline GET /health p50 {baseline:.2f} ms")
            card_p50 = 0.0
            for name, path in pages.items():
                cold = timed(lambda path=path: client.get(path))
                warm = p50_ms(lambda path=path: client.get(path))
                card_p50 = warm if name == "card" else card_p50
                print(
                    f"{name:28s} cold {cold:7.1f} ms   p50 {warm:6.2f} ms  "
                    f"({warm / baseline:5.1f}x baseline)"
                )
            verdict = "meets" if card_p50 < GOAL_CARD_P50_MS else "MISSES"
            print(f"card page p50 {card_p50:.2f} ms {verdict} the {GOAL_CARD_P50_MS:.0f} ms goal")
        finally:
            live.stop()


if __name__ == "__main__":
    main()
