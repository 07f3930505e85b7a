"""`/rows` at random offsets of a 10M-row parquet dataset on a live server (local backend).

Goals (issue 9): p50 < 200 ms, server RSS growth < 200 MB over the run. The baseline measured
in the same run is the same pages read in this process straight from the parquet file with
pyarrow (footer cached, one row group per page: the least any server can do), so a slow
machine shows as a slow baseline, not as a regression.

    .venv/bin/python -m bench.dataset_viewer [--rows 10000000] [--requests 200]

Under `python -m bench` (ATRIUM_BENCH_SMALL=1) the defaults are 1M rows and 50 requests;
ATRIUM_BENCH_DATASET_ROWS sets the row count either way.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import os
import random
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.repos.commits import AddLfsFile, Author, create_commit
from app.repos.manage import create_repo
from app.repos.models import LfsObject, RepoLfsObject
from bench.report import goal_line
from tests.hub.readkit import Owner, new_owner
from tests.live import (
    AWS_ENV,
    SHARED_SECRET_ENV,
    Backend,
    LiveServer,
    moto_server,
    postgres_database,
    start_server,
)

PAGE = 100
SCANS = {"search": {"query": "person 12345"}, "filter": {"where": "score > 1000 AND id < 9000"}}
WRITE_BATCH = 1_000_000
CACHE = Path(tempfile.gettempdir()) / "atrium-bench"
MiB = 1024 * 1024


def make_parquet(rows: int, row_group: int) -> Path:
    """A parquet file of `rows` rows (id, name, score, text), generated once and kept."""
    path = CACHE / f"rows-{rows}-{row_group}.parquet"
    if path.exists():
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    schema = pa.schema(
        [("id", pa.int64()), ("name", pa.string()), ("score", pa.float64()), ("text", pa.string())]
    )
    with pq.ParquetWriter(partial, schema) as writer:
        for start in range(0, rows, WRITE_BATCH):
            ids = pa.array(range(start, min(start + WRITE_BATCH, rows)), pa.int64())
            names = pa.compute.binary_join_element_wise("person ", ids.cast(pa.string()), "")
            texts = pa.compute.binary_join_element_wise(
                "some longer sentence about row number ", ids.cast(pa.string()), ""
            )
            scores = pa.compute.divide(ids.cast(pa.float64()), 7.0)
            table = pa.Table.from_arrays([ids, names, scores, texts], schema=schema)
            writer.write_table(table, row_group_size=row_group)
    partial.rename(path)
    return path


def commit_file(server: LiveServer, owner: Owner, source: Path) -> tuple[str, str]:
    """A dataset repo holding `source` as `data/train-00000-of-00001.parquet` (an LFS file)."""
    app = server.app()
    factory, blobs = app.state.sessionmaker, app.state.blobs
    repo = create_repo(factory, blobs, owner.principal(), "dataset", owner.name, "big")
    digest = hashlib.sha256()
    with source.open("rb") as handle:
        for chunk in iter(lambda: handle.read(8 * MiB), b""):
            digest.update(chunk)
    oid, size = digest.hexdigest(), source.stat().st_size
    with source.open("rb") as handle:
        blobs.put(f"lfs/{oid}", iter(lambda: handle.read(8 * MiB), b""), sha256=oid, size=size)
    with write_transaction(factory) as session:
        insert_ignore(session, LfsObject, [{"oid": oid, "size": size}], ["oid"])
        insert_ignore(
            session, RepoLfsObject, [{"repo_id": repo.id, "oid": oid}], ["repo_id", "oid"]
        )
    principal = owner.principal()
    assert principal.user is not None
    ops = [AddLfsFile("data/train-00000-of-00001.parquet", oid, size)]
    create_commit(
        factory, blobs, repo.id, "main", ops, author=Author.of(principal.user), title="big"
    )
    return f"{owner.name}/big", oid


def make_backend(name: str, folder: Path, stack: ExitStack) -> Backend:
    """sqlite + local folder, or postgres + S3 through moto (tests/live.py's servers)."""
    if name == "sqlite":
        return Backend("sqlite", folder)
    endpoint = stack.enter_context(moto_server())
    database = stack.enter_context(postgres_database())
    os.environ.update(AWS_ENV)
    env = {
        "ATRIUM_DATABASE_URL": database,
        "ATRIUM_STORAGE_URL": "s3://atrium-bench/blobs",
        "ATRIUM_S3_ENDPOINT_URL": endpoint,
        **AWS_ENV,
        **SHARED_SECRET_ENV,
    }
    return Backend("postgres", folder, env)


def direct_ms(source: Path, offsets: list[int]) -> list[float]:
    """The baseline: each page read in-process from the file (footer parsed once)."""
    handle = pq.ParquetFile(source)
    starts = row_group_starts(handle.metadata)
    samples = []
    for offset in offsets:
        began = time.perf_counter()
        group = bisect.bisect_right(starts, offset) - 1
        table = handle.read_row_group(group)
        table.slice(offset - starts[group], PAGE).to_pylist()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def row_group_starts(metadata: pq.FileMetaData) -> list[int]:
    starts = [0]
    for i in range(metadata.num_row_groups):
        starts.append(starts[-1] + metadata.row_group(i).num_rows)
    return starts


def storage_ms(server: LiveServer, oid: str, source: Path, offsets: list[int]) -> list[float]:
    """The storage baseline: one ranged read of each page's row group bytes straight from
    the server's blob store (a file read locally, a GET on S3), nothing decoded."""
    metadata = pq.ParquetFile(source).metadata
    starts, blobs = row_group_starts(metadata), server.app().state.blobs
    samples = []
    for offset in offsets:
        group = metadata.row_group(bisect.bisect_right(starts, offset) - 1)
        columns = [group.column(i) for i in range(group.num_columns)]
        first = min(c.dictionary_page_offset or c.data_page_offset for c in columns)
        last = max(
            (c.dictionary_page_offset or c.data_page_offset) + c.total_compressed_size
            for c in columns
        )
        began = time.perf_counter()
        b"".join(blobs.open(f"lfs/{oid}", first, last - first))
        samples.append((time.perf_counter() - began) * 1000)
    return samples


def timed_ms(
    client: httpx.Client, url: str, dataset: str, extra: dict[str, str]
) -> tuple[float, int]:
    started = time.perf_counter()
    answer = client.get(url, params={"dataset": dataset, "length": PAGE, **extra})
    assert answer.status_code == 200, answer.text
    return (time.perf_counter() - started) * 1000, int(answer.json()["num_rows_total"])


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    small = os.environ.get("ATRIUM_BENCH_SMALL") == "1"
    rows = int(os.environ.get("ATRIUM_BENCH_DATASET_ROWS", 1_000_000 if small else 10_000_000))
    parser.add_argument("--rows", type=int, default=rows)
    parser.add_argument("--row-group", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50 if small else 200)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: PostgreSQL + S3 (moto), so every page is a ranged GET",
    )
    args = parser.parse_args()

    began = time.perf_counter()
    source = make_parquet(args.rows, args.row_group)
    size_mb = source.stat().st_size / MiB
    print(f"parquet: {args.rows:,} rows, {size_mb:.0f} MiB, row groups of {args.row_group:,}")
    print(f"  (generated or reused in {time.perf_counter() - began:.1f} s)")
    rng = random.Random(args.seed)
    offsets = [rng.randrange(0, args.rows - PAGE) for _ in range(args.requests)]
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        server = start_server(make_backend(args.backend, Path(folder), stack))
        try:
            owner = new_owner(server)
            dataset, oid = commit_file(server, owner, source)
            process = psutil.Process(server.proc.pid)
            client = httpx.Client(headers={"Authorization": f"Bearer {owner.token}"}, timeout=600)
            url = f"{server.url}/api/datasets-server/rows"
            client.get(f"{server.url}/health")
            rss_before = process.memory_info().rss
            cold_began = time.perf_counter()
            first = client.get(url, params={"dataset": dataset, "offset": 0, "length": PAGE})
            cold_ms = (time.perf_counter() - cold_began) * 1000
            assert first.status_code == 200, first.text
            assert first.json()["num_rows_total"] == args.rows
            samples = []
            for offset in offsets:
                params = {"dataset": dataset, "offset": offset, "length": PAGE}
                started = time.perf_counter()
                answer = client.get(url, params=params)
                samples.append((time.perf_counter() - started) * 1000)
                rows = answer.json()["rows"]
                assert rows[0]["row"]["id"] == offset and len(rows) == PAGE, answer.text[:300]
            rss_peak_growth = (process.memory_info().rss - rss_before) / MiB
            scans = {
                route: timed_ms(client, f"{server.url}/api/datasets-server/{route}", dataset, extra)
                for route, extra in SCANS.items()
            }
            rss_scan_growth = (process.memory_info().rss - rss_before) / MiB
            storage = statistics.median(storage_ms(server, oid, source, offsets))
        finally:
            server.stop()
    baseline = direct_ms(source, offsets)
    p50, base50 = statistics.median(samples), statistics.median(baseline)
    store = "local folder store, SQLite" if args.backend == "sqlite" else "S3 (moto), PostgreSQL"
    print(f"/rows length={PAGE} at {args.requests} random offsets ({store})")
    print(f"  first request (cold footer, index): {cold_ms:8.1f} ms")
    print(f"  p95 {percentile(samples, 0.95):.1f} ms")
    print(f"  baseline (in-process pyarrow read of the same pages): p50 {base50:.1f} ms")
    print(f"  ratio p50 / baseline p50: {p50 / base50:.2f}x")
    print(f"  storage baseline (one ranged read of the row group's bytes): p50 {storage:.1f} ms")
    print(f"  ratio p50 / (storage + in-process read) p50: {p50 / (storage + base50):.2f}x")
    goal_line(f"/rows p50 at random offsets of {args.rows:,} rows", p50, "ms", "<", 200)
    goal_line("server RSS growth over the /rows run", rss_peak_growth, "MB", "<", 200)
    print("full scans of the split (DuckDB over streamed record batches):")
    for route, (ms, total) in scans.items():
        print(f"  /{route} {SCANS[route]}: {ms:8.0f} ms, {total:,} hits")
    print(f"  server RSS growth after the scans: {rss_scan_growth:.1f} MiB")


if __name__ == "__main__":
    main()
