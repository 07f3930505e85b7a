"""The dataset viewer's logic: a revision's configs and splits, its split tables, and queries.

A `Viewer` lives on `app.state` for the life of the process. It owns the caches that make
pages cheap — revision indexes (file list + layout) by commit, parquet footers by content, the
parquet conversions on disk — and nothing per request. Every entry point starts from a
`Revision` obtained through `open_revision`, which applies the repo's read permission, so a
private dataset is RepoNotFound to outsiders on every route.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import duckdb
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.auth.permissions import Principal
from app.blobs import BlobStore
from app.datasets.convert import Converter, Job, Status, spool
from app.datasets.engine import (
    ROW_INDEX,
    SCAN_BATCH_ROWS,
    LruCache,
    MemoryPart,
    ParquetPart,
    Part,
    SplitTable,
    footer_cache,
)
from app.datasets.export import (
    ExportFile,
    commit_export,
    export_paths,
    is_exported,
    store_bytes,
    store_conversion,
)
from app.datasets.folders import folder_table
from app.datasets.layout import (
    FOLDER_FORMATS,
    ConfigLayout,
    DatasetLayout,
    SplitFiles,
    resolve_layout,
)
from app.datasets.query import Compiled
from app.datasets.source import (
    Revision,
    card_data,
    content_id,
    file_entries,
    open_file,
    read_small,
)
from app.errors import BadRequest, NotFound
from app.repos import content
from app.repos.models import Repo, RepoEvent
from app.repos.service import (
    DEFAULT_BRANCH,
    HEADS,
    FileEntry,
    get_commit,
    get_repo,
    resolve_revision,
)

CACHE_DIR = "datasets-cache"
INDEX_CACHE_SIZE = 64  # revisions whose file list and layout stay in memory
FOLDER_CACHE_SIZE = 16
QUERY_MEMORY = "256MB"  # DuckDB's budget per search/filter; it streams, so this is plenty
CONVERTED_FORMATS = {".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "json"}
CONVERTED_FORMATS |= {".ndjson": "json", ".txt": "text"}


class SplitNotFound(NotFound):
    code = "SplitNotFound"
    default_message = "Config or split not found"


@dataclass(frozen=True)
class RevisionIndex:
    revision: Revision
    files: dict[str, FileEntry]
    layout: DatasetLayout


@dataclass(frozen=True)
class Page:
    """Rows of a split (or of a query's hits) with their indexes in the split."""

    rows: list[tuple[int, dict[str, Any]]]
    total: int
    schema: pa.Schema


class Viewer:
    def __init__(self, data_dir: Path, blobs: BlobStore):
        self.blobs = blobs
        self.root = data_dir / CACHE_DIR
        self.converter = Converter(self.root / "parquet")
        self.footers = footer_cache()
        self.indexes: LruCache[str, RevisionIndex] = LruCache(INDEX_CACHE_SIZE)
        # Image/audio folder tables by (commit, config, split, base URL): built from the file
        # list, so large folders are worth keeping between pages.
        self.folders: LruCache[tuple[str, str, str, str], MemoryPart] = LruCache(FOLDER_CACHE_SIZE)
        self.exports: set[str] = set()  # source commits whose export was queued
        self.lock = threading.Lock()

    # -- revisions -----------------------------------------------------------------------

    def open_revision(
        self, session: Session, principal: Principal, dataset: str, revision: str | None
    ) -> Revision:
        repo = get_repo(session, principal, "dataset", dataset, content=True)
        sha = resolve_revision(session, repo, revision)
        head = sha == resolve_revision(session, repo, None)
        return Revision(dataset, repo.id, sha, get_commit(session, sha).tree_sha, head)

    def index(self, session: Session, revision: Revision) -> RevisionIndex:
        """File list and layout of a revision; immutable, so cached by commit."""
        found = self.indexes.get(revision.commit_sha)
        if found is not None:
            return found
        files = file_entries(session, revision)
        layout = resolve_layout(sorted(files), card_data(session, self.blobs, revision))
        return self.indexes.put(revision.commit_sha, RevisionIndex(revision, files, layout))

    def locate(
        self, index: RevisionIndex, config: str | None, split: str | None
    ) -> tuple[ConfigLayout, SplitFiles]:
        found = index.layout.config(config)
        if found is None:
            raise SplitNotFound(f"Config {config!r} not found in {index.revision.dataset}")
        files = found.splits[0] if split is None and found.splits else found.split(split or "")
        if files is None:
            raise SplitNotFound(f"Split {split!r} not found in config {found.name!r}")
        return found, files

    # -- conversions ---------------------------------------------------------------------

    def job(self, entry: FileEntry) -> Job | None:
        """The conversion job of a csv/json/txt file; None for formats read as they are."""
        suffix = "." + entry.path.rsplit(".", 1)[-1].lower() if "." in entry.path else ""
        fmt = CONVERTED_FORMATS.get(suffix)
        if fmt is None:
            return None
        return Job(
            key=f"{fmt}-{content_id(entry)}",
            name=entry.path,
            format=fmt,
            size=entry.size,
            local=lambda: self._local_copy(entry),
        )

    def _local_copy(self, entry: FileEntry) -> tuple[Path, bool]:
        located = content.locate(self.blobs, entry)
        local = content.local_file(self.blobs, located)
        if local is not None:
            return local, False
        return spool(content.open_content(self.blobs, located), self.root / "spool"), True

    def conversion_status(self, index: RevisionIndex, files: SplitFiles) -> Status:
        """The least advanced conversion of the split's files (done when none is needed)."""
        worst = Status("done")
        for path in files.files:
            job = self.job(index.files[path])
            if job is None:
                continue
            self.converter.submit(job)
            status = self.converter.status(job.key)
            if status.state == "failed":
                return Status("failed", error=f"{path}: {status.error}")
            if status.state == "pending":
                worst = status
        return worst

    # -- tables --------------------------------------------------------------------------

    def split_table(
        self, index: RevisionIndex, config: ConfigLayout, files: SplitFiles, base_url: str
    ) -> SplitTable:
        if config.format in FOLDER_FORMATS:
            key = (index.revision.commit_sha, config.name, files.name, base_url)
            part = self.folders.get(key) or self.folders.put(
                key, self._folder_part(index, config.format, files, base_url)
            )
            return SplitTable([part])
        return SplitTable([self._file_part(index.files[path]) for path in files.files])

    def _file_part(self, entry: FileEntry) -> Part:
        job = self.job(entry)
        if job is None:
            return ParquetPart(
                entry.path,
                content_id(entry),
                lambda ahead: open_file(self.blobs, entry, ahead),
                self.footers,
            )
        converted = self.converter.wait(job)
        return ParquetPart(entry.path, job.key, lambda _ahead: str(converted), self.footers)

    def _folder_part(
        self, index: RevisionIndex, fmt: str, files: SplitFiles, base_url: str
    ) -> MemoryPart:
        revision = index.revision
        prefix = f"{base_url}/datasets/{revision.dataset}/resolve/{revision.commit_sha}/"
        metadata = {path: read_small(self.blobs, index.files[path]) for path in files.metadata}
        return MemoryPart(folder_table(fmt, files.files, metadata, lambda p: prefix + quote(p)))

    def converted_file(self, index: RevisionIndex, path: str) -> Path:
        job = self.job(index.files[path])
        if job is None:
            raise NotFound(f"{path} is not converted")
        return self.converter.wait(job)

    # -- parquet export ------------------------------------------------------------------

    def schedule_export(
        self, factory: sessionmaker[Session], index: RevisionIndex
    ) -> Future[str | None] | None:
        """Queue the refs/convert/parquet export of the default branch's head, once. It runs
        on the conversion thread after the conversions queued before it; None when there is
        nothing to export or it was queued already."""
        revision = index.revision
        if not revision.is_default_head or not export_paths(index.layout):
            return None
        with self.lock:
            if revision.commit_sha in self.exports:
                return None
            self.exports.add(revision.commit_sha)
        for _folder, paths in export_paths(index.layout):
            for path in paths:
                job = self.job(index.files[path])
                if job is not None:
                    self.converter.submit(job)
        return self.converter.executor.submit(self._export, factory, index)

    def _export(self, factory: sessionmaker[Session], index: RevisionIndex) -> str | None:
        revision = index.revision
        with factory() as session:
            if is_exported(session, revision.repo_id, revision.commit_sha):
                return None
        files = []
        for folder, paths in export_paths(index.layout):
            for n, path in enumerate(paths):
                stored = self._exported_object(index.files[path])
                if stored is None:
                    return None  # a conversion failed: the export waits for a fixed commit
                files.append(ExportFile(f"{folder}/{n:04d}.parquet", *stored))
        return commit_export(factory, self.blobs, revision.repo_id, revision.commit_sha, files)

    def _exported_object(self, entry: FileEntry) -> tuple[str, int] | None:
        """(LFS oid, size) of a file's parquet form: its own object, or its conversion's."""
        job = self.job(entry)
        if job is None and entry.lfs_oid is not None:
            return entry.lfs_oid, entry.size
        if job is None:
            return store_bytes(self.blobs, read_small(self.blobs, entry))
        status = self.converter.status(job.key)
        return store_conversion(self.blobs, status.path) if status.path else None

    def close(self) -> None:
        self.converter.close()


def read_page(table: SplitTable, offset: int, length: int) -> Page:
    rows = table.read(offset, length).to_pylist()
    return Page([(offset + i, row) for i, row in enumerate(rows)], table.num_rows, table.schema)


def query_page(table: SplitTable, where: Compiled, offset: int, length: int) -> Page:
    """Hits of a WHERE clause. DuckDB scans only the columns the clause reads, streamed batch
    by batch, and returns row indexes; only the page's rows are then read whole. Memory stays
    flat whatever the size of the split."""
    # No file access: the only table a query can reach is the split registered here.
    config: dict[str, str | bool | int | float | list[str]] = {"threads": 1}
    config["memory_limit"] = QUERY_MEMORY
    config["enable_external_access"] = False
    page: list[int] = []
    total = 0
    with duckdb.connect(config=config) as con:
        con.register("split_rows", table.scan(where.columns or table.schema.names[:1]))
        query = f"SELECT {ROW_INDEX} FROM split_rows WHERE {where.sql}"
        try:
            for batch in con.sql(query, params=where.params).to_arrow_reader(SCAN_BATCH_ROWS):
                start, stop = max(offset - total, 0), min(offset + length - total, len(batch))
                if start < stop:
                    page.extend(batch.column(0).slice(start, stop - start).to_pylist())
                total += batch.num_rows
        except duckdb.Error as exc:
            raise BadRequest(f"The query cannot run on this split: {_first_line(exc)}") from None
    rows = table.take(page).to_pylist()
    # A scan decodes the whole split batch by batch; hand the freed batches back to the OS
    # now rather than leave them cached in the allocator of this worker thread.
    pa.default_memory_pool().release_unused()
    return Page(list(zip(page, rows, strict=True)), total, table.schema)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def text_columns(schema: pa.Schema) -> list[str]:
    return [
        f.name
        for f in schema
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
        if not f.name.startswith("__")
    ]


class ParquetOnPush:
    """The consumer of ref moves that converts a dataset when a commit lands on its default
    branch — API commit, git push or merge — and exports the result to `refs/convert/parquet`,
    so that `load_dataset(..., revision="refs/convert/parquet")` and the viewer find it without
    anybody having opened the viewer first.

    It runs on the event poller only (`background`), never in the thread of the commit that
    moved the ref, and returns when the export is committed: its position then moves past the
    event, so a server that stops midway converts again after a restart (the export of a
    commit is made once: `commit_export` checks). A ref that moved on meanwhile is left to
    its own, newer event."""

    name = "parquet-on-push"
    background = True
    EXPORT_TIMEOUT_S = 3600

    def __init__(self, factory: sessionmaker[Session], viewer: Callable[[], Viewer]):
        self.factory = factory
        self.viewer = viewer

    def handle(self, event: RepoEvent) -> None:
        if event.repo_type != "dataset" or event.ref != HEADS + DEFAULT_BRANCH or not event.new:
            return
        with self.factory() as session:
            repo = session.scalar(select(Repo).where(Repo.uid == event.repo_uid))
            if repo is None or resolve_revision(session, repo, None) != event.new:
                return
            if is_exported(session, repo.id, event.new):
                return
            revision = Revision(
                repo.repo_id, repo.id, event.new, get_commit(session, event.new).tree_sha, True
            )
            viewer = self.viewer()
            future = viewer.schedule_export(self.factory, viewer.index(session, revision))
        if future is not None:
            future.result(timeout=self.EXPORT_TIMEOUT_S)
