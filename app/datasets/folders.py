"""Image and audio folders as tables, the way `datasets`' folder-based builders read them.

Each media file is a row whose `image` (or `audio`) cell is the URL of that file in the repo.
Columns come from `metadata.csv`/`metadata.jsonl`/`metadata.parquet` files (their `file_name`
is relative to the metadata file's folder); without metadata, files spread over several
folders get a ClassLabel `label` from their parent folder name.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from app.datasets.engine import DataFileError
from app.datasets.features import feature_of

FILE_NAME = "file_name"
COLUMN = {"imagefolder": ("image", "Image"), "audiofolder": ("audio", "Audio")}


def folder_table(
    fmt: str,
    files: Sequence[str],
    metadata: Mapping[str, bytes],
    file_url: Callable[[str], str],
) -> pa.Table:
    """The rows of one split; `metadata` maps each metadata file path to its content."""
    column, kind = COLUMN[fmt]
    features: dict[str, Any] = {column: {"_type": kind}}
    by_path = _metadata_rows(metadata)
    if by_path:
        files = [f for f in files if f in by_path]
        extra = _columns(by_path.values())
        rows = [{column: file_url(f), **{c: by_path[f].get(c) for c in extra}} for f in files]
        table = (
            pa.Table.from_pylist(rows) if rows else pa.table({column: pa.array([], pa.string())})
        )
        features.update({c: None for c in extra})
    else:
        table = pa.table({column: [file_url(f) for f in files]})
        labels = sorted({posixpath.basename(posixpath.dirname(f)) for f in files})
        if len(labels) > 1:
            index = {name: i for i, name in enumerate(labels)}
            names = [index[posixpath.basename(posixpath.dirname(f))] for f in files]
            table = table.append_column("label", pa.array(names, pa.int64()))
            features["label"] = {"names": labels, "_type": "ClassLabel"}
    return _with_features(table, features)


def _metadata_rows(metadata: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """Metadata rows keyed by the full repo path of the file they describe."""
    out: dict[str, dict[str, Any]] = {}
    for path, content in metadata.items():
        folder = posixpath.dirname(path)
        for row in _read_metadata(path, content).to_pylist():
            name = row.pop(FILE_NAME, None)
            if isinstance(name, str):
                out[posixpath.normpath(posixpath.join(folder, name))] = row
    return out


def _read_metadata(path: str, content: bytes) -> pa.Table:
    try:
        if path.endswith(".csv"):
            table = pacsv.read_csv(io.BytesIO(content))
        elif path.endswith(".jsonl"):
            table = pajson.read_json(io.BytesIO(content))
        else:
            table = pq.read_table(io.BytesIO(content))
    except (pa.ArrowException, OSError) as exc:
        raise DataFileError(f"{path} cannot be read: {exc}") from None
    if FILE_NAME not in table.column_names:
        raise DataFileError(f"{path} has no {FILE_NAME!r} column")
    return table


def _columns(rows: Any) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    return list(seen)


def _with_features(table: pa.Table, features: dict[str, Any]) -> pa.Table:
    """Record the media and label features the way `datasets` does, in schema metadata;
    columns from metadata files keep their arrow-mapped features (None here)."""
    resolved = {
        name: feature if feature is not None else feature_of(table.schema.field(name).type)
        for name, feature in features.items()
    }
    info = json.dumps({"info": {"features": resolved}})
    return table.replace_schema_metadata({"huggingface": info})
