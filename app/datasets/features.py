"""Arrow schemas as `datasets` features, and arrow cells as the JSON the viewer answers.

Parquet files written by `datasets` carry their features in the schema metadata
(`{"huggingface": {"info": {"features": …}}}`, arrow_writer.py): those are used as they are, so
ClassLabel names and Image columns survive. Other files get the mapping of
`datasets.features.features._arrow_to_datasets_dtype`.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import json
import math
from collections.abc import Callable, Mapping
from typing import Any

import pyarrow as pa

Feature = dict[str, Any]
# Builds the URL of a binary cell's content (an image in a parquet file) from its column name.
AssetUrl = Callable[[str], str]

MAX_CELL_CHARS = (
    100_000  # a longer text cell is cut (and named in truncated_cells): pages stay small
)
_FLOAT_NAMES = {"halffloat": "float16", "float": "float32", "double": "float64"}


def arrow_dtype(arrow_type: pa.DataType) -> str:
    name = str(arrow_type)
    return _FLOAT_NAMES.get(name, name)


def feature_of(arrow_type: pa.DataType) -> Any:
    """The `datasets` feature dict of one arrow type (lists, structs and dictionaries nested)."""
    if pa.types.is_struct(arrow_type):
        return {f.name: feature_of(f.type) for f in arrow_type}
    if pa.types.is_large_list(arrow_type):
        return {"feature": feature_of(arrow_type.value_type), "_type": "LargeList"}
    if pa.types.is_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type):
        return {"feature": feature_of(arrow_type.value_type), "_type": "List"}
    if pa.types.is_dictionary(arrow_type):
        return feature_of(arrow_type.value_type)
    return {"dtype": arrow_dtype(arrow_type), "_type": "Value"}


def features_of(schema: pa.Schema) -> dict[str, Any]:
    """The dataset's features: the ones `datasets` wrote, else mapped from the arrow types."""
    stored = _stored_features(schema)
    mapped = {f.name: feature_of(f.type) for f in schema if not f.name.startswith("__")}
    if stored and set(stored) == set(mapped):
        return {name: stored[name] for name in mapped}
    return mapped


def _stored_features(schema: pa.Schema) -> dict[str, Any] | None:
    raw = (schema.metadata or {}).get(b"huggingface")
    if not raw:
        return None
    try:
        features = json.loads(raw)["info"]["features"]
    except (ValueError, KeyError, TypeError):
        return None
    return features if isinstance(features, dict) else None


def feature_list(features: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The viewer's `features` array: `[{feature_idx, name, type}]`."""
    return [
        {"feature_idx": i, "name": name, "type": feature}
        for i, (name, feature) in enumerate(features.items())
    ]


def cell_json(value: Any, feature: Any, asset_url: AssetUrl | None, column: str) -> Any:
    """A cell as strict JSON: no NaN (JSON has none), dates as ISO strings, bytes as base64,
    images and audio as `{"src": url}` like the Hub's viewer."""
    kind = feature.get("_type") if isinstance(feature, dict) else None
    if kind in ("Image", "Audio") and value is not None:
        return _media_cell(value, kind, asset_url, column)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        sub = feature if isinstance(feature, dict) else {}
        return {k: cell_json(v, sub.get(k), asset_url, column) for k, v in value.items()}
    if isinstance(value, list):
        inner = feature.get("feature") if isinstance(feature, dict) else None
        return [cell_json(v, inner, asset_url, column) for v in value]
    return value


def _media_cell(value: Any, kind: str, asset_url: AssetUrl | None, column: str) -> Any:
    """An image or audio cell: a URL to its bytes (an asset route) or to its repo file."""
    src: str | None = None
    if isinstance(value, str):
        src = value  # image and audio folders: the URL of the file in the repo
    elif isinstance(value, dict) and value.get("bytes") is not None and asset_url is not None:
        src = asset_url(column)
    elif isinstance(value, dict) and isinstance(value.get("path"), str):
        src = value["path"]
    if src is None:
        return None
    return {"src": src} if kind == "Image" else [{"src": src, "type": _audio_type(src)}]


def _audio_type(src: str) -> str:
    ext = src.rsplit(".", 1)[-1].lower() if "." in src else "wav"
    return {"mp3": "audio/mpeg", "ogg": "audio/ogg", "flac": "audio/flac"}.get(ext, "audio/wav")


def row_json(
    row: Mapping[str, Any], features: Mapping[str, Any], asset_url: AssetUrl | None
) -> dict[str, Any]:
    return {name: cell_json(row.get(name), f, asset_url, name) for name, f in features.items()}


def truncate_cells(row: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Text cells cut to MAX_CELL_CHARS, with the names of the cut columns (as the Hub's
    viewer reports them in `truncated_cells`)."""
    cut = [k for k, v in row.items() if isinstance(v, str) and len(v) > MAX_CELL_CHARS]
    for name in cut:
        row[name] = row[name][:MAX_CELL_CHARS]
    return row, cut
