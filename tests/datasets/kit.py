"""Tiny datasets built in code, committed through the repo model, and a viewer API client."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from tests.hub.readkit import Owner, make_repo

VIEWER = "/api/datasets-server"


def parquet_bytes(table: pa.Table, row_group_size: int = 1000) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, row_group_size=row_group_size)
    return out.getvalue()


def jsonl_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    return b"".join(json.dumps(dict(r)).encode() + b"\n" for r in rows)


def csv_bytes(rows: Sequence[Mapping[str, Any]]) -> bytes:
    header = ",".join(rows[0])
    lines = [",".join(str(v) for v in r.values()) for r in rows]
    return ("\n".join([header, *lines]) + "\n").encode()


def png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (4, 3)) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format="PNG")
    return out.getvalue()


def people(count: int, offset: int = 0) -> list[dict[str, Any]]:
    """Rows with an int, a string and a float column; names make search hits predictable."""
    return [
        {"id": offset + i, "name": f"person {offset + i}", "score": (offset + i) / 2}
        for i in range(count)
    ]


def dataset(
    owner: Owner,
    name: str,
    files: Mapping[str, bytes] = {},
    lfs: Mapping[str, bytes] = {},
    *,
    private: bool = False,
) -> str:
    """A dataset repo with files committed on main; returns its id."""
    make_repo(owner, name, files, lfs, repo_type="dataset", private=private)
    return f"{owner.name}/{name}"


@dataclass
class ViewerClient:
    url: str
    token: str | None = None

    def get(self, route: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        clean = {k: v for k, v in params.items() if v is not None}
        return httpx.get(f"{self.url}{VIEWER}/{route}", params=clean, headers=headers, timeout=60)

    def json(self, route: str, **params: Any) -> Any:
        response = self.get(route, **params)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def rows(self, route: str = "rows", **params: Any) -> list[dict[str, Any]]:
        return [item["row"] for item in self.json(route, **params)["rows"]]
