"""csv/tsv, json/jsonl and txt files converted once to parquet, in the background, cached.

The cache is keyed by the file's content id (LFS sha256 or git blob sha1) and its format, so a
file shared by many repos and revisions is converted once. Layout under
`$ATRIUM_DATA_DIR/datasets-cache/parquet/`: `<key>.parquet` once done (renamed into place, so a
reader never sees a half-written file) or `<key>.error` holding the reason it failed. Jobs run
one at a time in a worker thread, streaming: memory stays bounded whatever the file size.

Engines: pyarrow's streaming csv reader is strict (a row with an extra field is an error, where
DuckDB's sniffer silently falls back to one text column); DuckDB reads both json layouts
(one document per line, or one array) in a stream; txt files are split into lines here, one
`text` row per line, as `datasets`' text builder does.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from app.errors import AtriumError

log = logging.getLogger("atrium.datasets")
ROW_GROUP_ROWS = 10_000  # small row groups: a page of rows decodes 10k rows, not a whole file
CSV_BLOCK_BYTES = 4 * 1024 * 1024
TEXT_BATCH_LINES = 10_000
DUCKDB_MEMORY = "256MB"
# As the Hub's viewer: wider files are not shown (a 200,000-column CSV cost 49 s and 3 GB per
# page of rows), and refusing before converting costs one read of the header.
MAX_COLUMNS = 1_000
WAIT_S = 10.0  # a request waits this long for a conversion before answering "not ready"


class ResponseNotReady(AtriumError):
    status = 503
    code = "ResponseNotReady"
    default_message = "The conversion to parquet is in progress; retry later"


class ConversionFailed(AtriumError):
    status = 422
    code = "ConversionFailed"
    default_message = "The conversion to parquet failed"


@dataclass(frozen=True)
class Job:
    """A file to convert: `fetch` writes its bytes to a local path (or names the path)."""

    key: str
    name: str  # the repo path, for messages
    format: str  # csv | tsv | json | text
    size: int
    local: Callable[[], tuple[Path, bool]]  # -> (path, is_temporary)


@dataclass(frozen=True)
class Status:
    state: str  # done | pending | failed
    path: Path | None = None
    error: str | None = None
    progress: float | None = None


class Converter:
    """The conversion cache of one server process, with its single worker thread."""

    def __init__(self, root: Path):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parquet-convert")
        self.jobs: dict[str, Future[None]] = {}
        self.progress: dict[str, float] = {}
        self.lock = threading.Lock()

    def parquet_path(self, key: str) -> Path:
        return self.root / f"{key}.parquet"

    def error_path(self, key: str) -> Path:
        return self.root / f"{key}.error"

    def status(self, key: str) -> Status:
        if self.parquet_path(key).exists():
            return Status("done", path=self.parquet_path(key))
        if self.error_path(key).exists():
            return Status("failed", error=self.error_path(key).read_text())
        return Status("pending", progress=self.progress.get(key, 0.0))

    def submit(self, job: Job) -> Future[None] | None:
        """Queue the job unless it is done, failed or queued already."""
        if self.status(job.key).state != "pending":
            return None
        with self.lock:
            future = self.jobs.get(job.key)
            if future is None:
                future = self.executor.submit(self._run, job)
                self.jobs[job.key] = future
            return future

    def wait(self, job: Job, timeout: float = WAIT_S) -> Path:
        """The parquet file of the job, converting it if needed; ResponseNotReady when it takes
        longer than timeout, ConversionFailed with the reason when the file is malformed."""
        future = self.submit(job)
        if future is not None:
            try:
                future.result(timeout)
            except TimeoutError:
                percent = round(100 * self.progress.get(job.key, 0.0))
                raise ResponseNotReady(
                    f"{job.name} is being converted to parquet ({percent}% done); retry later",
                    headers={"Retry-After": "2"},
                ) from None
        status = self.status(job.key)
        if status.path is None:
            raise ConversionFailed(f"Conversion of {job.name} to parquet failed: {status.error}")
        return status.path

    def _run(self, job: Job) -> None:
        try:
            self._convert(job)
        except (pa.ArrowException, duckdb.Error, UnicodeDecodeError, ValueError) as exc:
            # The content is malformed: the same bytes always fail, so the reason is kept.
            self.error_path(job.key).write_text(_reason(exc))
        except Exception:
            log.exception("conversion of %s failed", job.name)  # storage errors: retried later
            raise
        finally:
            with self.lock:
                self.jobs.pop(job.key, None)
                self.progress.pop(job.key, None)

    def _convert(self, job: Job) -> None:
        source, temporary = job.local()
        target = self.parquet_path(job.key)
        partial = target.with_name(f"{target.name}.{threading.get_ident()}.tmp")
        try:
            convert_file(source, partial, job.format, lambda p: self._report(job.key, p))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
            if temporary:
                source.unlink(missing_ok=True)

    def _report(self, key: str, fraction: float) -> None:
        self.progress[key] = min(max(fraction, 0.0), 1.0)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


def too_many_columns(count: int) -> str:
    return f"the file has {count:,} columns; the viewer shows files of at most {MAX_COLUMNS:,}"


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def spool(chunks: Iterator[bytes], directory: Path) -> Path:
    """Copy a stream to a temporary local file (for engines that need a path)."""
    directory.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=directory, suffix=".src")
    with os.fdopen(handle, "wb") as out:
        for chunk in chunks:
            out.write(chunk)
    return Path(name)


def convert_file(source: Path, target: Path, fmt: str, report: Callable[[float], None]) -> None:
    if fmt in ("csv", "tsv"):
        _convert_csv(source, target, "\t" if fmt == "tsv" else ",", report)
    elif fmt == "json":
        _convert_json(source, target, report)
    elif fmt == "text":
        _convert_text(source, target, report)
    else:
        raise ValueError(f"no conversion for the {fmt} format")


def _convert_csv(
    source: Path, target: Path, delimiter: str, report: Callable[[float], None]
) -> None:
    """Types are inferred from the first block; when a later block does not fit them (a
    number column that turns to text further down), the file is read again as all text
    rather than refused, as pandas (which `datasets` uses) would read it as objects."""
    try:
        _write_csv(source, target, delimiter, report, as_text=False)
    except pa.ArrowInvalid as exc:
        if "conversion error" not in str(exc).lower():
            raise
        _write_csv(source, target, delimiter, report, as_text=True)


def _write_csv(
    source: Path,
    target: Path,
    delimiter: str,
    report: Callable[[float], None],
    *,
    as_text: bool,
) -> None:
    total = max(source.stat().st_size, 1)
    read_options = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    parse_options = pacsv.ParseOptions(delimiter=delimiter)
    convert_options = pacsv.ConvertOptions()
    with source.open("rb") as raw:
        names = pacsv.open_csv(raw, read_options, parse_options).schema.names
    if len(names) > MAX_COLUMNS:
        raise ValueError(too_many_columns(len(names)))
    if as_text:
        convert_options = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
    with source.open("rb") as raw:
        reader = pacsv.open_csv(raw, read_options, parse_options, convert_options)
        with pq.ParquetWriter(target, reader.schema) as writer:
            for batch in reader:
                writer.write_batch(batch, row_group_size=ROW_GROUP_ROWS)
                report(raw.tell() / total)


def _convert_json(source: Path, target: Path, report: Callable[[float], None]) -> None:
    with duckdb.connect(config={"threads": 1, "memory_limit": DUCKDB_MEMORY}) as con:
        relation = con.read_json(str(source))
        report(0.5)
        relation.write_parquet(str(target), row_group_size=ROW_GROUP_ROWS)


def _convert_text(source: Path, target: Path, report: Callable[[float], None]) -> None:
    schema = pa.schema([pa.field("text", pa.string())])
    total = max(source.stat().st_size, 1)
    with source.open("rb") as raw, pq.ParquetWriter(target, schema) as writer:
        for lines in _line_batches(raw):
            writer.write_batch(pa.record_batch([pa.array(lines, pa.string())], schema=schema))
            report(raw.tell() / total)


def _line_batches(raw: BinaryIO) -> Iterator[list[str]]:
    lines: list[str] = []
    for line in raw:
        lines.append(line.decode("utf-8").rstrip("\r\n"))
        if len(lines) >= TEXT_BATCH_LINES:
            yield lines
            lines = []
    if lines:
        yield lines
