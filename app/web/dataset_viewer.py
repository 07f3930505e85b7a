"""The dataset viewer on a dataset's card page, rendered on the server (no script): the
split switcher, one page of rows with column types, search, and image cells as thumbnails.

Rows come from the viewer API's own functions (app/datasets/views.py) with an empty base
URL, so image cells point at `/api/datasets-server/assets?…` on this origin (the page's CSP
allows only that). A split whose csv/json files are still converting is shown as pending,
never waited for: the card page must stay fast.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from app.blobs.base import BlobStore
from app.datasets import views
from app.deps import get_viewer
from app.web.pages import Page

PAGE_ROWS = 20
MAX_SHOWN_CHARS = 300  # a longer cell is cut on the page (the API serves it whole)


@dataclass(frozen=True)
class Query:
    """What the visitor asked for, from the card page's query string."""

    config: str | None = None
    split: str | None = None
    offset: int = 0
    q: str = ""


@dataclass(frozen=True)
class Column:
    name: str
    type: str


@dataclass(frozen=True)
class Cell:
    text: str = ""
    image: str | None = None  # the thumbnail's URL


@dataclass(frozen=True)
class Choice:
    config: str
    split: str
    url: str
    current: bool


@dataclass
class Table:
    """One page of the viewer, or the state (`pending`/`failed`) that stands in for it."""

    config: str
    split: str
    q: str
    state: str = "done"
    error: str | None = None
    choices: list[Choice] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)
    rows: list[tuple[int, list[Cell]]] = field(default_factory=list)
    total: int = 0
    offset: int = 0
    prev_url: str | None = None
    next_url: str | None = None


def viewer_table(
    page: Page, blobs: BlobStore, dataset: str, revision: str, page_url: str, query: Query
) -> Table | None:
    """The viewer of `dataset` at `revision`; None when it has no data files to show.
    Private datasets are checked as by the API (RepoNotFound to those who may not read)."""
    viewer = get_viewer(page.request)
    revision_index = viewer.open_revision(page.db, page.principal, dataset, revision)
    index = viewer.index(page.db, revision_index)
    if not index.layout.configs:
        return None
    config, files = viewer.locate(index, query.config, query.split)

    def link(offset: int, q: str, config: str = config.name, split: str = files.name) -> str:
        params: dict[str, Any] = {"config": config, "split": split}
        params |= {"offset": offset} if offset else {}
        params |= {"q": q} if q else {}
        return f"{page_url}?{urlencode(params)}#viewer"

    table = Table(config.name, files.name, query.q)
    here = (config.name, files.name)
    table.choices = [
        Choice(c.name, s.name, link(0, "", c.name, s.name), (c.name, s.name) == here)
        for c in index.layout.configs
        for s in c.splits
    ]
    status = viewer.conversion_status(index, files)
    if status.state != "done":
        table.state, table.error = status.state, status.error
        return table
    try:
        if query.q:
            paging = views.Paging(query.offset, PAGE_ROWS)
            body = views.search(viewer, index, "", config.name, files.name, query.q, paging)
        else:
            body = views.rows(viewer, index, "", config.name, files.name, query.offset, PAGE_ROWS)
    except views.TooManyColumns as exc:
        table.state, table.error = "failed", exc.message  # the page says why, in a line
        return table
    _fill(table, body, query.offset)
    if query.offset > 0:
        table.prev_url = link(max(query.offset - PAGE_ROWS, 0), query.q)
    if query.offset + PAGE_ROWS < table.total:
        table.next_url = link(query.offset + PAGE_ROWS, query.q)
    return table


def _fill(table: Table, body: dict[str, Any], offset: int) -> None:
    """Columns, rows and total from a `/rows` or `/search` body."""
    features = body["features"]
    table.columns = [Column(f["name"], type_label(f["type"])) for f in features]
    table.rows = [
        (item["row_idx"], [cell(item["row"].get(f["name"]), f["type"]) for f in features])
        for item in body["rows"]
    ]
    table.total, table.offset = body["num_rows_total"], offset


def type_label(feature: Any) -> str:
    """A short name for a `datasets` feature: the dtype of a Value, `list<…>` of a sequence."""
    if isinstance(feature, list):
        return f"list<{type_label(feature[0])}>" if feature else "list"
    if not isinstance(feature, dict):
        return "struct"
    kind = feature.get("_type")
    if kind == "Value":
        return str(feature.get("dtype"))
    if kind in ("Sequence", "List", "LargeList"):
        return f"list<{type_label(feature.get('feature'))}>"
    if kind == "ClassLabel":
        return "class label"
    return str(kind).lower() if kind else "struct"


def cell(value: Any, feature: Any = None) -> Cell:
    """A JSON cell as shown: an image's URL, a class label's name, or its text cut to
    MAX_SHOWN_CHARS."""
    if isinstance(value, dict) and isinstance(value.get("src"), str) and len(value) == 1:
        return Cell(image=value["src"])
    names = feature.get("names") if isinstance(feature, dict) else None
    if isinstance(value, int) and isinstance(names, list) and 0 <= value < len(names):
        return Cell(text=f"{names[value]} ({value})")
    text = "" if value is None else value if isinstance(value, str) else _json(value)
    if len(text) > MAX_SHOWN_CHARS:
        text = text[:MAX_SHOWN_CHARS] + "…"
    return Cell(text=text)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)
