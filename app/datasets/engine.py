"""A split as one table over many parts: page reads by row group, scans by record batch.

A part is a parquet file (in the repo, read with byte ranges, or a cached conversion on local
disk) or a small in-memory table (an image folder's file list). Nothing reads a whole file: a
page touches the row groups that hold its rows, a scan streams record batches that DuckDB
consumes one by one. Parquet footers are kept in a small LRU cache keyed by content, because
every page of a 10M-row file would otherwise re-read them.
"""

from __future__ import annotations

import bisect
import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Generic, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from app.errors import AtriumError

K = TypeVar("K")
V = TypeVar("V")
ROW_INDEX = "__row_idx"  # added to scanned batches, so search and filter hits keep their index
SCAN_BATCH_ROWS = 65_536  # rows per batch of a scan: big enough that per-batch overhead vanishes
FOOTER_CACHE_SIZE = 512  # footers of a few hundred files: a few MB at most


class DataFileError(AtriumError):
    """A data file that cannot be read (a truncated parquet file, a malformed csv)."""

    status = 422
    code = "DataFileError"
    default_message = "The data file cannot be read"


class Part(Protocol):
    @property
    def num_rows(self) -> int: ...

    @property
    def schema(self) -> pa.Schema: ...

    @property
    def nbytes(self) -> int:
        """Uncompressed size of the rows (from the footer for parquet: no data read)."""
        ...

    def read(self, start: int, stop: int) -> pa.Table:
        """Rows [start, stop) of this part."""
        ...

    def take(self, indexes: Sequence[int]) -> pa.Table:
        """The rows at these (sorted) indexes of this part."""
        ...

    def batches(self, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]: ...


# Opens a file given how many bytes each storage read should fetch ahead.
Source = BinaryIO | io.RawIOBase | str  # what pyarrow opens: a file object or a local path
Opener = Callable[[int], Source]
# A page reads a row group's column chunks in one call: unbuffered, that is one storage read
# (a buffer would split it into a buffer-multiple and a remainder: two GETs).
PAGE_READ_AHEAD = 0
# A scan reads the file front to back: each storage request (a ranged GET on S3, ~0.4 s on
# moto) fetches 8 MiB, which made a 2M-row scan over S3 9x faster than 256 KiB reads.
SCAN_READ_AHEAD = 8 * 1024 * 1024


class LruCache(Generic[K, V]):
    """A small thread-safe map that forgets its least recently used entry past `size`."""

    def __init__(self, size: int):
        self.size = size
        self.items: OrderedDict[K, V] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self.lock:
            found = self.items.get(key)
            if found is not None:
                self.items.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> V:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return value


def footer_cache() -> LruCache[str, pq.FileMetaData]:
    """Parquet footers by content id, shared by all requests."""
    return LruCache(FOOTER_CACHE_SIZE)


@dataclass
class ParquetPart:
    """One parquet file; `name` (its repo path) makes read errors say which file is broken."""

    name: str
    key: str
    opener: Opener
    footers: LruCache[str, pq.FileMetaData]

    def _file(self, read_ahead: int = PAGE_READ_AHEAD) -> pq.ParquetFile:
        metadata = self.footers.get(self.key)
        try:
            handle = pq.ParquetFile(self.opener(read_ahead), metadata=metadata)
        except (pa.ArrowException, OSError) as exc:
            raise DataFileError(f"{self.name} is not a readable parquet file: {exc}") from None
        if metadata is None:
            self.footers.put(self.key, handle.metadata)
        return handle

    @property
    def metadata(self) -> pq.FileMetaData:
        cached = self.footers.get(self.key)
        return cached if cached is not None else self._file().metadata

    @property
    def num_rows(self) -> int:
        return int(self.metadata.num_rows)

    @property
    def schema(self) -> pa.Schema:
        return self.metadata.schema.to_arrow_schema()

    @property
    def nbytes(self) -> int:
        metadata = self.metadata
        return sum(metadata.row_group(i).total_byte_size for i in range(metadata.num_row_groups))

    def read(self, start: int, stop: int) -> pa.Table:
        """Only the row groups that overlap [start, stop) are fetched and decoded."""
        with self._file() as handle:
            bounds = _row_group_starts(handle.metadata)
            first = bisect.bisect_right(bounds, start) - 1
            last = bisect.bisect_left(bounds, stop) - 1
            groups = list(range(max(first, 0), max(last, first) + 1))
            try:
                table = handle.read_row_groups(groups)
            except (pa.ArrowException, OSError) as exc:
                raise DataFileError(f"{self.name} is truncated or corrupt: {exc}") from None
        return table.slice(start - bounds[groups[0]], stop - start)

    def take(self, indexes: Sequence[int]) -> pa.Table:
        """Each row group holding some of the rows is read once."""
        with self._file() as handle:
            bounds = _row_group_starts(handle.metadata)
            by_group: dict[int, list[int]] = {}
            for index in indexes:
                group = bisect.bisect_right(bounds, index) - 1
                by_group.setdefault(group, []).append(index - bounds[group])
            try:
                pieces = [handle.read_row_group(g).take(rows) for g, rows in by_group.items()]
            except (pa.ArrowException, OSError) as exc:
                raise DataFileError(f"{self.name} is truncated or corrupt: {exc}") from None
        return pa.concat_tables(pieces) if pieces else self.schema.empty_table()

    def batches(self, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        with self._file(SCAN_READ_AHEAD) as handle:
            try:
                yield from handle.iter_batches(
                    batch_size=SCAN_BATCH_ROWS, columns=list(columns) if columns else None
                )
            except (pa.ArrowException, OSError) as exc:
                raise DataFileError(f"{self.name} is truncated or corrupt: {exc}") from None


def _row_group_starts(metadata: pq.FileMetaData) -> list[int]:
    starts, total = [], 0
    for i in range(metadata.num_row_groups):
        starts.append(total)
        total += metadata.row_group(i).num_rows
    starts.append(total)
    return starts


@dataclass
class MemoryPart:
    """A small table built in memory (the file list of an image or audio folder)."""

    table: pa.Table

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)

    @property
    def schema(self) -> pa.Schema:
        return self.table.schema

    @property
    def nbytes(self) -> int:
        return int(self.table.nbytes)

    def read(self, start: int, stop: int) -> pa.Table:
        return self.table.slice(start, stop - start)

    def take(self, indexes: Sequence[int]) -> pa.Table:
        return self.table.take(list(indexes))

    def batches(self, columns: Sequence[str] | None) -> Iterator[pa.RecordBatch]:
        table = self.table.select(list(columns)) if columns else self.table
        yield from table.to_batches(max_chunksize=SCAN_BATCH_ROWS)


class SplitTable:
    """The parts of one split as one table; parts must share the first part's columns."""

    def __init__(self, parts: Sequence[Part]):
        self.parts = list(parts)
        self.starts = [0]
        for part in self.parts:
            self.starts.append(self.starts[-1] + part.num_rows)

    @property
    def num_rows(self) -> int:
        return self.starts[-1]

    @property
    def schema(self) -> pa.Schema:
        return self.parts[0].schema if self.parts else pa.schema([])

    @property
    def nbytes(self) -> int:
        return sum(part.nbytes for part in self.parts)

    def read(self, offset: int, length: int) -> pa.Table:
        """Rows [offset, offset+length) across parts (fewer at the end of the table)."""
        stop = min(offset + length, self.num_rows)
        pieces = []
        index = bisect.bisect_right(self.starts, offset) - 1
        while offset < stop and index < len(self.parts):
            base = self.starts[index]
            end = min(stop, self.starts[index + 1])
            part_rows = self.parts[index].read(offset - base, end - base)
            pieces.append(self._aligned(part_rows, self.schema))
            offset, index = end, index + 1
        if not pieces:
            return self.schema.empty_table()
        return pa.concat_tables(pieces)

    def take(self, indexes: Sequence[int]) -> pa.Table:
        """The rows at these sorted indexes of the split (the hits of a query's page)."""
        by_part: dict[int, list[int]] = {}
        for index in indexes:
            part = bisect.bisect_right(self.starts, index) - 1
            by_part.setdefault(part, []).append(index - self.starts[part])
        pieces = [
            self._aligned(self.parts[part].take(rows), self.schema)
            for part, rows in by_part.items()
        ]
        return pa.concat_tables(pieces) if pieces else self.schema.empty_table()

    @staticmethod
    def _aligned(table: pa.Table, schema: pa.Schema) -> pa.Table:
        """A part's table with the split's schema, so that shards concatenate."""
        if table.schema.equals(schema, check_metadata=False):
            return table
        try:
            return table.select(schema.names).cast(schema)
        except (pa.ArrowException, KeyError) as exc:
            raise DataFileError(f"The files of this split have different columns: {exc}") from None

    def scan(self, columns: Sequence[str] | None = None) -> pa.RecordBatchReader:
        """Every row in order as record batches, with its index in the split (ROW_INDEX)."""
        fields = [self.schema.field(c) for c in columns] if columns else list(self.schema)
        data_schema = pa.schema(fields)
        schema = pa.schema([*fields, pa.field(ROW_INDEX, pa.int64())])

        def generate() -> Iterator[pa.RecordBatch]:
            for part, start in zip(self.parts, self.starts, strict=False):
                position = start
                for batch in part.batches(columns):
                    if batch.num_rows == 0:
                        continue
                    if not batch.schema.equals(data_schema):
                        table = self._aligned(pa.Table.from_batches([batch]), data_schema)
                        batch = table.combine_chunks().to_batches()[0]
                    index = np.arange(position, position + batch.num_rows, dtype=np.int64)
                    arrays = [*batch.columns, pa.array(index)]
                    yield pa.RecordBatch.from_arrays(arrays, schema=schema)
                    position += batch.num_rows

        return pa.RecordBatchReader.from_batches(schema, generate())
