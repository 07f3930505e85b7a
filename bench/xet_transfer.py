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


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def raw_put(live: LiveServer, path: Path) -> float:
    """A sha256-verified put of the file into the server's blob store, in-process."""
    blobs = live.app().state.blobs
    with path.open("rb") as handle:
        sha = hashlib.file_digest(handle, "sha256").hexdigest()

    def put() -> None:
        with path.open("rb") as handle:
            blobs.put("bench/raw", iter(lambda: handle.read(MB), b""), sha256=sha)

    return timed(put)


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

            raw_s = raw_put(live, weights)
            xet_s = timed(
                lambda: api.upload_file(
                    path_or_fileobj=str(weights), path_in_repo="model.safetensors", repo_id=repo
                )
            )
            stored_first = stored_xorb_bytes(live)

            change_one_percent(weights)
            # Another machine: no local cache, so dedup goes through the global chunk query.
            os.environ["HF_HOME"] = str(root / "hf-home-2")
            before = stored_xorb_bytes(live)
            reup_s = timed(
                lambda: api.upload_file(
                    path_or_fileobj=str(weights), path_in_repo="model.safetensors", repo_id=repo
                )
            )
            again = stored_xorb_bytes(live) - before

            url = f"{live.url}/{repo}/resolve/main/model.safetensors"
            xet_dl_s = timed(
                lambda: hf_hub_download(
                    repo, "model.safetensors", endpoint=live.url, token=token, force_download=True
                )
            )
            plain_s = timed(lambda: plain_get(url, token))
        finally:
            live.stop()

    mb = size / MB
    print(f"file: {mb:.0f} MB safetensors-like (float16 normal weights), local backend")
    print(f"raw store put:       {raw_s:6.2f} s  {mb / raw_s:7.1f} MB/s")
    print(f"upload through Xet:  {xet_s:6.2f} s  {mb / xet_s:7.1f} MB/s")
    print(f"  ratio Xet/raw throughput: {raw_s / xet_s:.2f}x (goal >= 0.4x)")
    print(f"  xorb bytes stored: {stored_first / MB:.1f} MB ({stored_first / size:.1%} of file)")
    print(f"re-upload, 1% changed: {reup_s:6.2f} s")
    print(
        f"  xorb bytes sent and stored again: {again / MB:.2f} MB ({again / size:.2%}, goal <= 5%)"
    )
    print(f"download through Xet: {xet_dl_s:6.2f} s  {mb / xet_dl_s:7.1f} MB/s")
    print(f"download plain GET:   {plain_s:6.2f} s  {mb / plain_s:7.1f} MB/s")
    print(f"  ratio Xet/plain throughput: {plain_s / xet_dl_s:.2f}x")


if __name__ == "__main__":
    main()
