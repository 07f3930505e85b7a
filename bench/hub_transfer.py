"""LFS transfers through Atrium vs plain baselines measured in the same run (issue 4, Done-when
(a), (b), (d)), on the local store and on S3 (moto), with the legacy LFS path (Xet off):

(a) download of one large LFS file: `curl -o /dev/null` through `/resolve` vs curl from a plain
    static server on loopback (`python -m http.server` over the blob folder; for S3 a direct GET
    of a presigned URL from the S3 endpoint) — goal >= 0.8x; `hf_hub_download` through Atrium vs
    `curl -o file` through Atrium — goal >= 0.8x.
(b) `upload_file` of the same file (LFS path: preupload, batch, PUT with server-side sha256
    verification, verify, commit) vs a raw blob store put of it — goal >= 0.5x.
(d) the server's RSS growth during (a) and (b) — goal < 100 MB.

    ATRIUM_BENCH_MB=1024 ATRIUM_BENCH_STORES=local,s3 .venv/bin/python -m bench.hub_transfer

Each timing is the best of ATRIUM_BENCH_RUNS (default 2) runs.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
from huggingface_hub import HfApi, constants, hf_hub_download

from tests.live import AWS_ENV, Backend, LiveServer, free_port, moto_server, start_server, wait_http

MB = 1024 * 1024
RUNS = int(os.environ.get("ATRIUM_BENCH_RUNS", "2"))


def best_of(call: Callable[[], object], runs: int = RUNS) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return min(times)


def write_random(path: Path, size: int) -> str:
    """Incompressible bytes, written and hashed in 16 MB pieces; returns the sha256."""
    digest = hashlib.sha256()
    with path.open("wb") as out:
        left = size
        while left:
            piece = os.urandom(min(left, 16 * MB))
            digest.update(piece)
            out.write(piece)
            left -= len(piece)
    return digest.hexdigest()


def curl(url: str, out: str, token: str | None = None) -> None:
    command = ["curl", "-sSf", "-o", out, url]
    if token:
        command[1:1] = ["-H", f"Authorization: Bearer {token}"]
    subprocess.run(command, check=True)


@dataclass
class RssWatch:
    """Samples a process's RSS every 20 ms; `peak - start` is the growth during a phase."""

    pid: int
    start: int = 0
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def watching(self) -> Iterator[RssWatch]:
        process = psutil.Process(self.pid)
        self.start = self.peak = process.memory_info().rss
        self._stop.clear()

        def sample() -> None:
            while not self._stop.wait(0.02):
                self.peak = max(self.peak, process.memory_info().rss)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join()

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / MB


@contextmanager
def static_server(folder: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def raw_put(live: LiveServer, path: Path, sha: str) -> float:
    """The store's own put of the file, sha256-verified as the LFS upload is."""
    blobs = live.app().state.blobs

    def put() -> None:
        with path.open("rb") as handle:
            blobs.put(
                f"bench/{secrets.token_hex(4)}", iter(lambda: handle.read(MB), b""), sha256=sha
            )

    return best_of(put)


def curl_put(live: LiveServer, api: HfApi, repo: str, root: Path, size: int) -> float:
    """The server side of (b) alone: `curl -T` of other bytes of the same size to the signed
    URL of a batch answer (upload_file also hashes the whole file client-side first)."""
    other = root / "other.bin"
    sha = write_random(other, size)
    batch = httpx.post(
        f"{live.url}/{repo}.git/info/lfs/objects/batch",
        json={"operation": "upload", "objects": [{"oid": sha, "size": size}]},
        headers={"authorization": f"Bearer {api.token}"},
    )
    href = batch.json()["objects"][0]["actions"]["upload"]["href"]
    seconds = best_of(
        lambda: subprocess.run(["curl", "-sSf", "-T", str(other), href], check=True), 1
    )
    other.unlink()
    return seconds


def bench_store(store: str, root: Path, size: int, s3_endpoint: str | None) -> dict[str, float]:
    env = {}
    if store == "s3":
        assert s3_endpoint is not None
        env = {
            "ATRIUM_STORAGE_URL": f"s3://bench-{secrets.token_hex(4)}/blobs",
            "ATRIUM_S3_ENDPOINT_URL": s3_endpoint,
            **AWS_ENV,
        }
        os.environ.update(AWS_ENV)
    live = start_server(Backend(store, root / store, env))
    try:
        return _measure(live, root, size, store)
    finally:
        live.stop()


def _measure(live: LiveServer, root: Path, size: int, store: str) -> dict[str, float]:
    name, token = live.new_user()
    api = HfApi(endpoint=live.url, token=token)
    repo = f"{name}/bench"
    api.create_repo(repo)
    source = root / "weights.bin"
    sha = write_random(source, size)
    watch = RssWatch(live.proc.pid)
    out: dict[str, float] = {"raw_put": raw_put(live, source, sha)}

    def upload() -> None:
        with source.open("rb") as handle:  # a file object: the LFS path even with Xet on
            api.upload_file(path_or_fileobj=handle, path_in_repo="weights.bin", repo_id=repo)

    with watch.watching():
        out["upload"] = best_of(upload, 1)  # a second upload would be a no-op commit
    out["upload_rss"] = watch.growth_mb
    out["curl_put"] = curl_put(live, api, repo, root, size)

    url = f"{live.url}/{repo}/resolve/main/weights.bin"
    target = root / "download.bin"
    with watch.watching():
        out["curl_resolve"] = best_of(lambda: curl(url, "/dev/null", token))
        out["curl_resolve_file"] = best_of(lambda: curl(url, str(target), token))
        out["hf_hub_download"] = best_of(
            lambda: hf_hub_download(
                repo, "weights.bin", endpoint=live.url, token=token, force_download=True
            )
        )
    out["download_rss"] = watch.growth_mb
    blobs = live.app().state.blobs
    if store == "s3":
        direct = blobs.presigned_url(f"lfs/{sha}", 3600)
        out["baseline_get"] = best_of(lambda: curl(direct, "/dev/null"))
    else:
        path = blobs.local_path(f"lfs/{sha}")
        with static_server(path.parent) as static:
            out["baseline_get"] = best_of(lambda: curl(f"{static}/{path.name}", "/dev/null"))
    return out


def report(store: str, size: int, t: dict[str, float]) -> None:
    mb = size / MB

    def rate(key: str) -> str:
        return f"{t[key]:7.2f} s {mb / t[key]:8.1f} MB/s"

    static = "direct S3 GET" if store == "s3" else "python -m http.server"
    print(f"\n== {store} store, {mb:.0f} MB LFS file ==")
    print(f"(a) curl via resolve -> /dev/null      {rate('curl_resolve')}")
    print(f"    curl from {static:22s}   {rate('baseline_get')}")
    print(f"    ratio resolve/static:  {t['baseline_get'] / t['curl_resolve']:.2f}x (goal >= 0.8x)")
    print(f"    curl via resolve -> file           {rate('curl_resolve_file')}")
    print(f"    hf_hub_download via Atrium         {rate('hf_hub_download')}")
    ratio = t["curl_resolve_file"] / t["hf_hub_download"]
    print(f"    ratio hf_hub_download/curl: {ratio:.2f}x (goal >= 0.8x)")
    print(f"(b) upload_file (LFS, verified)        {rate('upload')}")
    print(f"    raw store put (verified)           {rate('raw_put')}")
    print(f"    ratio upload/raw put:  {t['raw_put'] / t['upload']:.2f}x (goal >= 0.5x)")
    print(f"    curl -T to the signed upload URL   {rate('curl_put')}")
    print(f"    ratio server-side PUT/raw put: {t['raw_put'] / t['curl_put']:.2f}x")
    print(
        f"(d) server RSS growth: upload {t['upload_rss']:.1f} MB, "
        f"downloads {t['download_rss']:.1f} MB (goal < 100 MB)"
    )


def main() -> None:
    size = int(os.environ.get("ATRIUM_BENCH_MB", "1024")) * MB
    stores = [s.strip() for s in os.environ.get("ATRIUM_BENCH_STORES", "local,s3").split(",")]
    os.environ["HF_HUB_DISABLE_XET"] = "1"
    constants.HF_HUB_DISABLE_XET = True
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        constants.HF_HUB_CACHE = str(root / "hf-cache")
        results = {}
        with moto_server() if "s3" in stores else _nothing() as s3_endpoint:
            for store in stores:
                results[store] = bench_store(store, root, size, s3_endpoint)
                shutil.rmtree(root / "hf-cache", ignore_errors=True)
        for store, timings in results.items():
            report(store, size, timings)


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


if __name__ == "__main__":
    main()
