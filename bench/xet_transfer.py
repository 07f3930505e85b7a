"""Xet transfers on the local backend, with the real huggingface_hub client (Xet on):

1. upload of a safetensors-like file through Xet (server-side verification included: every
   chunk decoded and hashed, the sha256 recomputed) vs a raw blob store put of the same bytes
   (sha256-verified), as a ratio of throughputs (goal >= 0.4);
2. re-upload of the file with 1% of its bytes changed, from a client without a local cache:
   xorb bytes sent and stored again, as a share of the file (goal <= 5%);
3. download through Xet (hf_hub_download) vs plain `GET /resolve` (what git-lfs and curl do).

    ATRIUM_BENCH_XET_MB=500 .venv/bin/python -m bench.xet_transfer
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from huggingface_hub import HfApi, constants, hf_hub_download

from tests.live import Backend, LiveServer, start_server
from tests.xet.xetkit import stored_xorb_bytes

MB = 1024 * 1024


def safetensors_like(path: Path, size: int) -> None:
    """A header and float16 tensors of normally distributed weights, written in 64 MB pieces."""
    header = json.dumps({"__metadata__": {"format": "pt"}, "w": {"dtype": "F16"}}).encode()
    rng = np.random.default_rng(0)
    with path.open("wb") as out:
        out.write(len(header).to_bytes(8, "little") + header)
        left = size - 8 - len(header)
        while left > 0:
            n = min(left, 64 * MB) // 2 * 2 or left
            out.write(rng.standard_normal(n // 2).astype(np.float16).tobytes()[:n])
            left -= n


@dataclass(frozen=True)
class Cost:
    """Wall seconds, and CPU seconds of client and server together: on a shared machine the
    CPU ratio is the stable one, the wall ratio depends on what else runs."""

    wall: float
    cpu: float


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(call: Callable[[], object], server_pid: int) -> Cost:
    cpu0 = time.process_time() + process_cpu(server_pid)
    started = time.perf_counter()
    call()
    wall = time.perf_counter() - started
    return Cost(wall, time.process_time() + process_cpu(server_pid) - cpu0)


def raw_put(live: LiveServer, path: Path) -> Cost:
    """A sha256-verified put of the file into the server's blob store, in-process."""
    blobs = live.app().state.blobs
    with path.open("rb") as handle:
        sha = hashlib.file_digest(handle, "sha256").hexdigest()

    def put() -> None:
        with path.open("rb") as handle:
            blobs.put("bench/raw", iter(lambda: handle.read(MB), b""), sha256=sha)

    return measure(put, live.proc.pid)


def change_one_percent(path: Path) -> None:
    """Overwrite 1% of the bytes, in ten places spread over the file."""
    size = path.stat().st_size
    step = size // 10
    with path.open("r+b") as handle:
        for i in range(10):
            handle.seek(i * step + step // 2)
            handle.write(os.urandom(size // 1000))


def plain_get(url: str, token: str) -> int:
    total = 0
    with httpx.stream("GET", url, headers={"authorization": f"Bearer {token}"}, timeout=600) as r:
        for part in r.iter_bytes(MB):
            total += len(part)
    return total


def main() -> None:
    size = int(os.environ.get("ATRIUM_BENCH_XET_MB", "500")) * MB
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        os.environ["HF_HOME"] = str(root / "hf-home")
        constants.HF_HUB_CACHE = str(root / "hf-home" / "hub")
        live = start_server(Backend("sqlite", root / "server"))
        try:
            name, token = live.new_user()
            api = HfApi(endpoint=live.url, token=token)
            repo = f"{name}/bench"
            api.create_repo(repo)
            weights = root / "model.safetensors"
            safetensors_like(weights, size)

            raw = raw_put(live, weights)
            xet = measure(
                lambda: api.upload_file(
                    path_or_fileobj=str(weights), path_in_repo="model.safetensors", repo_id=repo
                ),
                live.proc.pid,
            )
            stored_first = stored_xorb_bytes(live)

            change_one_percent(weights)
            # Another machine: no local cache, so dedup goes through the global chunk query.
            os.environ["HF_HOME"] = str(root / "hf-home-2")
            before = stored_xorb_bytes(live)
            reup = measure(
                lambda: api.upload_file(
                    path_or_fileobj=str(weights), path_in_repo="model.safetensors", repo_id=repo
                ),
                live.proc.pid,
            )
            again = stored_xorb_bytes(live) - before

            url = f"{live.url}/{repo}/resolve/main/model.safetensors"
            xet_dl = measure(
                lambda: hf_hub_download(
                    repo, "model.safetensors", endpoint=live.url, token=token, force_download=True
                ),
                live.proc.pid,
            )
            plain = measure(lambda: plain_get(url, token), live.proc.pid)
        finally:
            live.stop()

    print(f"file: {size // MB} MB safetensors-like (float16 normal weights), local backend")
    report(size, {"raw store put": raw, "upload through Xet": xet}, "goal >= 0.4x")
    print(f"  xorb bytes stored: {stored_first / MB:.1f} MB ({stored_first / size:.1%} of file)")
    print(f"re-upload from a cache-less client, 1% changed: {reup.wall:.2f} s")
    print(
        f"  xorb bytes sent and stored again: {again / MB:.2f} MB ({again / size:.2%}, goal <= 5%)"
    )
    report(size, {"download plain GET": plain, "download through Xet": xet_dl}, "")


def report(size: int, runs: dict[str, Cost], goal: str) -> None:
    """Each run's wall time and throughput, then the second run against the first (baseline)."""
    mb = size / MB
    for name, cost in runs.items():
        print(
            f"{name:22} {cost.wall:6.2f} s wall {mb / cost.wall:7.1f} MB/s, {cost.cpu:6.2f} s CPU"
        )
    (base, other) = runs.values()
    print(
        f"  throughput ratio: {base.wall / other.wall:.2f}x wall, {base.cpu / other.cpu:.2f}x CPU"
        + (f" ({goal})" if goal else "")
    )


if __name__ == "__main__":
    main()
