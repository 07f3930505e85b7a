"""The JSON bodies of the viewer API, in the shapes of Hugging Face's datasets-server
(`services/api` and `libs/libcommon` there): `rows` items are `{row_idx, row, truncated_cells}`,
`features` items `{feature_idx, name, type}` with `type` in the `datasets` feature format.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from app.datasets.convert import MAX_COLUMNS, too_many_columns
from app.datasets.engine import SplitTable
from app.datasets.features import feature_list, features_of, row_json, truncate_cells
from app.datasets.layout import FOLDER_FORMATS, ConfigLayout, SplitFiles
from app.datasets.query import compile_search, compile_where
from app.datasets.service import (
    Page,
    RevisionIndex,
    SplitNotFound,
    Viewer,
    query_page,
    read_page,
    text_columns,
)
from app.errors import AtriumError, EntryNotFound, NotFound

FIRST_ROWS = 100
MEDIA_TYPES = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"RIFF", "image/webp"),
    (b"BM", "image/bmp"),
)


@dataclass(frozen=True)
class Paging:
    offset: int
    length: int


@dataclass(frozen=True)
class Selected:
    """One split of one config, opened as a table."""

    index: RevisionIndex
    config: ConfigLayout
    split: SplitFiles
    table: SplitTable
    base_url: str

    @property
    def features(self) -> dict[str, Any]:
        return features_of(self.table.schema)


class TooManyColumns(AtriumError):
    status = 422
    code = "TooManyColumnsError"
    default_message = "The split has too many columns to be shown"


def select(
    viewer: Viewer, index: RevisionIndex, base_url: str, config: str | None, split: str | None
) -> Selected:
    found_config, files = viewer.locate(index, config, split)
    table = viewer.split_table(index, found_config, files, base_url)
    columns = len(table.schema.names)
    if columns > MAX_COLUMNS:  # a parquet file as uploaded: read from its footer alone
        raise TooManyColumns(f"The split {files.name!r}: {too_many_columns(columns)}")
    return Selected(index, found_config, files, table, base_url)


def is_valid(index: RevisionIndex) -> dict[str, Any]:
    viewable = bool(index.layout.configs)
    return {
        "preview": viewable,
        "viewer": viewable,
        "search": viewable,
        "filter": viewable,
        "statistics": False,
    }


def splits(viewer: Viewer, index: RevisionIndex) -> dict[str, Any]:
    """Every split, plus conversions still running (`pending`, with progress) or failed."""
    dataset = index.revision.dataset
    listed, pending, failed = [], [], []
    for config in index.layout.configs:
        for files in config.splits:
            where = {"dataset": dataset, "config": config.name, "split": files.name}
            listed.append(where)
            status = viewer.conversion_status(index, files)
            if status.state == "pending":
                pending.append({**where, "progress": status.progress})
            elif status.state == "failed":
                failed.append({**where, "error": status.error})
    return {"splits": listed, "pending": pending, "failed": failed}


def _rows_body(selected: Selected, page: Page) -> dict[str, Any]:
    features = selected.features
    return {
        "features": feature_list(features),
        "rows": [_row_item(selected, features, idx, row) for idx, row in page.rows],
        "num_rows_total": page.total,
        "num_rows_per_page": FIRST_ROWS,
        "partial": False,
    }


def _row_item(
    selected: Selected, features: dict[str, Any], idx: int, row: dict[str, Any]
) -> dict[str, Any]:
    def asset_url(column: str) -> str:
        return f"{selected.base_url}/api/datasets-server/assets?" + asset_query(
            selected, idx, column
        )

    cells, truncated = truncate_cells(row_json(row, features, asset_url))
    return {"row_idx": idx, "row": cells, "truncated_cells": truncated}


def asset_query(selected: Selected, row: int, column: str) -> str:
    """The `/assets` query of one cell, pinned to the revision's commit."""
    revision = selected.index.revision
    return urlencode(
        {
            "dataset": revision.dataset,
            "revision": revision.commit_sha,
            "config": selected.config.name,
            "split": selected.split.name,
            "row": row,
            "column": column,
        }
    )


def first_rows(
    viewer: Viewer, index: RevisionIndex, base_url: str, config: str | None, split: str | None
) -> dict[str, Any]:
    selected = select(viewer, index, base_url, config, split)
    body = _rows_body(selected, read_page(selected.table, 0, FIRST_ROWS))
    return {
        "dataset": index.revision.dataset,
        "config": selected.config.name,
        "split": selected.split.name,
        "features": body["features"],
        "rows": body["rows"],
        "truncated": selected.table.num_rows > FIRST_ROWS,
    }


def rows(
    viewer: Viewer,
    index: RevisionIndex,
    base_url: str,
    config: str | None,
    split: str | None,
    offset: int,
    length: int,
) -> dict[str, Any]:
    selected = select(viewer, index, base_url, config, split)
    return _rows_body(selected, read_page(selected.table, offset, length))


def search(
    viewer: Viewer,
    index: RevisionIndex,
    base_url: str,
    config: str | None,
    split: str | None,
    query: str,
    paging: Paging,
) -> dict[str, Any]:
    selected = select(viewer, index, base_url, config, split)
    media = {n for n, f in selected.features.items() if _is_media(f)}
    columns = [c for c in text_columns(selected.table.schema) if c not in media]
    compiled = compile_search(query, columns)
    return _rows_body(selected, query_page(selected.table, compiled, paging.offset, paging.length))


def filter_rows(
    viewer: Viewer,
    index: RevisionIndex,
    base_url: str,
    config: str | None,
    split: str | None,
    where: str,
    paging: Paging,
) -> dict[str, Any]:
    selected = select(viewer, index, base_url, config, split)
    compiled = compile_where(where, selected.table.schema.names)
    return _rows_body(selected, query_page(selected.table, compiled, paging.offset, paging.length))


def _configs(index: RevisionIndex, config: str | None) -> list[ConfigLayout]:
    if config is None:
        return list(index.layout.configs)
    found = index.layout.config(config)
    if found is None:
        raise SplitNotFound(f"Config {config!r} not found in {index.revision.dataset}")
    return [found]


def _split_size(viewer: Viewer, index: RevisionIndex, selected: Selected) -> dict[str, Any]:
    original = sum(index.files[p].size for p in selected.split.files)
    parquet = 0 if selected.config.format in FOLDER_FORMATS else _parquet_bytes(viewer, selected)
    return {
        "dataset": index.revision.dataset,
        "config": selected.config.name,
        "split": selected.split.name,
        "num_bytes_original_files": original,
        "num_bytes_parquet_files": parquet,
        "num_bytes_memory": selected.table.nbytes,
        "num_rows": selected.table.num_rows,
        "num_columns": len(selected.features),
    }


def _parquet_bytes(viewer: Viewer, selected: Selected) -> int:
    total = 0
    for path in selected.split.files:
        entry = selected.index.files[path]
        job = viewer.job(entry)
        total += (
            entry.size if job is None else viewer.converter.parquet_path(job.key).stat().st_size
        )
    return total


def _all_splits(
    viewer: Viewer, index: RevisionIndex, base_url: str, config: str | None
) -> list[Selected]:
    return [
        select(viewer, index, base_url, found.name, files.name)
        for found in _configs(index, config)
        for files in found.splits
    ]


def size(viewer: Viewer, index: RevisionIndex, base_url: str, config: str | None) -> dict[str, Any]:
    split_sizes = [
        _split_size(viewer, index, s) for s in _all_splits(viewer, index, base_url, config)
    ]
    keys = ("num_bytes_original_files", "num_bytes_parquet_files", "num_bytes_memory", "num_rows")
    configs = []
    for found in _configs(index, config):
        mine = [s for s in split_sizes if s["config"] == found.name]
        totals = {k: sum(s[k] for s in mine) for k in keys}
        columns = max((s["num_columns"] for s in mine), default=0)
        configs.append(
            {
                "dataset": index.revision.dataset,
                "config": found.name,
                **totals,
                "num_columns": columns,
            }
        )
    dataset_totals = {k: sum(s[k] for s in split_sizes) for k in keys}
    body: dict[str, Any] = {"configs": configs, "splits": split_sizes}
    if config is None:
        body["dataset"] = {"dataset": index.revision.dataset, **dataset_totals}
    else:
        body["config"] = configs[0]
        del body["configs"]
    return {"size": body, "pending": [], "failed": [], "partial": False}


def info(viewer: Viewer, index: RevisionIndex, base_url: str, config: str | None) -> dict[str, Any]:
    """`dataset_info` as `datasets` writes it (DatasetInfo.to_dict), per config."""
    infos = {}
    for found in _configs(index, config):
        selected = [select(viewer, index, base_url, found.name, f.name) for f in found.splits]
        sizes = [_split_size(viewer, index, s) for s in selected]
        infos[found.name] = {
            "dataset_name": index.revision.dataset.split("/", 1)[1],
            "config_name": found.name,
            "builder_name": found.format,
            "features": selected[0].features if selected else {},
            "splits": {
                s["split"]: {
                    "name": s["split"],
                    "num_bytes": s["num_bytes_memory"],
                    "num_examples": s["num_rows"],
                    "dataset_name": index.revision.dataset.split("/", 1)[1],
                }
                for s in sizes
            },
            "download_size": sum(s["num_bytes_parquet_files"] for s in sizes),
            "dataset_size": sum(s["num_bytes_memory"] for s in sizes),
        }
    body = infos[config] if config is not None else infos
    return {"dataset_info": body, "pending": [], "failed": [], "partial": False}


def parquet_files(
    viewer: Viewer, index: RevisionIndex, base_url: str, config: str | None
) -> dict[str, Any]:
    """Parquet files of each split: the repo's own, or the conversions of csv/json/txt files."""
    files = [
        {
            "dataset": index.revision.dataset,
            "config": found.name,
            "split": split.name,
            "filename": path.rsplit("/", 1)[-1],
            **_parquet_location(viewer, index, base_url, path),
        }
        for found in _configs(index, config)
        if found.format not in FOLDER_FORMATS
        for split in found.splits
        for path in split.files
    ]
    return {"parquet_files": files, "pending": [], "failed": [], "partial": False}


def _parquet_location(
    viewer: Viewer, index: RevisionIndex, base_url: str, path: str
) -> dict[str, Any]:
    """`url` and `size` of a file's parquet form: the repo file itself (pinned to the
    commit), or its conversion served by `/parquet-file`."""
    revision, entry = index.revision, index.files[path]
    job = viewer.job(entry)
    if job is None:
        url = f"{base_url}/datasets/{revision.dataset}/resolve/{revision.commit_sha}/{quote(path)}"
        return {"url": url, "size": entry.size}
    local = viewer.converter.wait(job)
    query = {"dataset": revision.dataset, "revision": revision.commit_sha, "path": path}
    url = f"{base_url}/api/datasets-server/parquet-file?{urlencode(query)}"
    return {"url": url, "size": local.stat().st_size}


def data_file(index: RevisionIndex, path: str) -> str:
    if path not in index.files:
        raise EntryNotFound(f"Entry not found: {path}")
    return path


def cell_bytes(
    viewer: Viewer,
    index: RevisionIndex,
    base_url: str,
    config: str | None,
    split: str | None,
    row: int,
    column: str,
) -> bytes:
    selected = select(viewer, index, base_url, config, split)
    if column not in selected.table.schema.names:
        raise NotFound(f"No column named {column!r}")
    page = read_page(selected.table, row, 1)
    if not page.rows:
        raise NotFound(f"No row {row} in this split")
    value = page.rows[0][1].get(column)
    if isinstance(value, dict):
        value = value.get("bytes")
    if not isinstance(value, bytes):
        raise NotFound(f"The cell {column!r} of row {row} holds no binary content")
    return value


def sniff_media_type(data: bytes) -> str:
    return next(
        (kind for magic, kind in MEDIA_TYPES if data.startswith(magic)), "application/octet-stream"
    )


def _is_media(feature: Any) -> bool:
    return isinstance(feature, dict) and feature.get("_type") in ("Image", "Audio")
