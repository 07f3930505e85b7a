"""The viewer API against a live server: splits, rows, search, filter, size, info and parquet
of each format, privacy, and bad input (malformed files, injection attempts, huge pages)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dulwich.objects import Blob
from huggingface_hub import HfApi
from huggingface_hub.errors import RevisionNotFoundError

from tests.datasets.kit import (
    ViewerClient,
    csv_bytes,
    dataset,
    jsonl_bytes,
    parquet_bytes,
    people,
    png_bytes,
)
from tests.hub.readkit import Owner, new_owner
from tests.live import LiveServer

TRAIN = people(250)
TEST = people(50, offset=1000)
CSV_TRAIN, CSV_TEST = people(30), people(5, offset=500)
JSONL = [{"q": f"question {i}", "tags": [f"t{i}", "x"], "meta": {"n": i}} for i in range(40)]
README_CONFIGS = b"""---
configs:
- config_name: en
  data_files:
  - split: train
    path: en/*.csv
- config_name: fr
  data_files: fr/*.jsonl
---
"""
EXPORT = "refs/convert/parquet"
RED, BLUE = png_bytes((255, 0, 0)), png_bytes((0, 0, 255))


@dataclass
class Fixture:
    owner: Owner
    client: ViewerClient
    ids: dict[str, str]


@pytest.fixture(scope="module")
def fx(server: LiveServer) -> Fixture:
    owner = new_owner(server)
    table = pa.Table.from_pylist(TRAIN)
    ids = {
        "parquet": dataset(
            owner,
            "parquet",
            lfs={
                "data/train-00000-of-00002.parquet": parquet_bytes(table.slice(0, 150), 40),
                "data/train-00001-of-00002.parquet": parquet_bytes(table.slice(150), 40),
                "data/test-00000-of-00001.parquet": parquet_bytes(pa.Table.from_pylist(TEST)),
            },
        ),
        "csv": dataset(
            owner, "csv", {"train.csv": csv_bytes(CSV_TRAIN), "test.csv": csv_bytes(CSV_TEST)}
        ),
        "jsonl": dataset(owner, "jsonl", lfs={"data/train.jsonl": jsonl_bytes(JSONL)}),
        "text": dataset(owner, "text", {"lines.txt": b"first line\nsecond line\n\nlast"}),
        "images": dataset(
            owner,
            "images",
            lfs={
                "train/cat/a.png": RED,
                "train/dog/b.png": BLUE,
                "train/dog/c.png": RED,
                "test/cat/d.png": BLUE,
            },
        ),
        "configs": dataset(
            owner,
            "configs",
            {
                "README.md": README_CONFIGS,
                "en/a.csv": csv_bytes(CSV_TRAIN[:3]),
                "fr/b.jsonl": jsonl_bytes(JSONL[:2]),
            },
        ),
        "private": dataset(owner, "secret", {"train.csv": csv_bytes(CSV_TRAIN)}, private=True),
        "malformed": dataset(owner, "malformed", {"train.csv": b"a,b\n1,2\n3,4,5\n"}),
        "long": dataset(owner, "long", {"t.jsonl": jsonl_bytes([{"t": "x" * 150_000, "n": 1}])}),
        "truncated": dataset(
            owner,
            "truncated",
            lfs={"train.parquet": parquet_bytes(pa.Table.from_pylist(TRAIN))[:-100]},
        ),
    }
    return Fixture(owner, ViewerClient(server.url, owner.token), ids)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("parquet", [("default", "train"), ("default", "test")]),
        ("csv", [("default", "train"), ("default", "test")]),
        ("jsonl", [("default", "train")]),
        ("text", [("default", "train")]),
        ("images", [("default", "train"), ("default", "test")]),
        ("configs", [("en", "train"), ("fr", "train")]),
    ],
)
def test_splits_of_each_format(fx: Fixture, name: str, expected: list[tuple[str, str]]) -> None:
    body = fx.client.json("splits", dataset=fx.ids[name])
    assert [(s["config"], s["split"]) for s in body["splits"]] == expected
    assert {s["dataset"] for s in body["splits"]} == {fx.ids[name]}
    assert body["failed"] == []


def test_rows_page_across_shards_and_row_groups_of_parquet(fx: Fixture) -> None:
    response = fx.client.get(
        "rows", dataset=fx.ids["parquet"], split="train", offset=140, length=20
    )
    body = response.json()
    assert [r["row_idx"] for r in body["rows"]] == list(range(140, 160))
    assert [r["row"] for r in body["rows"]] == TRAIN[140:160]
    assert body["num_rows_total"] == 250
    assert [(f["name"], f["type"]) for f in body["features"]] == [
        ("id", {"dtype": "int64", "_type": "Value"}),
        ("name", {"dtype": "string", "_type": "Value"}),
        ("score", {"dtype": "float64", "_type": "Value"}),
    ]
    assert len(response.headers["X-Revision"]) == 40
    tail = fx.client.json("rows", dataset=fx.ids["parquet"], split="train", offset=245, length=100)
    assert [r["row"] for r in tail["rows"]] == TRAIN[245:]
    beyond = fx.client.json("rows", dataset=fx.ids["parquet"], split="train", offset=10**6)
    assert beyond["rows"] == []


def test_first_rows_of_the_default_split(fx: Fixture) -> None:
    body = fx.client.json("first-rows", dataset=fx.ids["parquet"], config="default", split="test")
    assert [r["row"] for r in body["rows"]] == TEST
    assert (body["split"], body["truncated"]) == ("test", False)
    first = fx.client.json("first-rows", dataset=fx.ids["parquet"])
    assert (first["split"], len(first["rows"]), first["truncated"]) == ("train", 100, True)


@pytest.mark.parametrize(
    ("name", "split", "expected"),
    [
        ("csv", "train", CSV_TRAIN),
        ("csv", "test", CSV_TEST),
        ("jsonl", "train", JSONL),
        ("text", "train", [{"text": t} for t in ("first line", "second line", "", "last")]),
    ],
)
def test_rows_of_converted_formats_equal_the_files(
    fx: Fixture, name: str, split: str, expected: list[dict[str, Any]]
) -> None:
    assert fx.client.rows(dataset=fx.ids[name], split=split) == expected


def test_search_finds_substrings_in_text_columns(fx: Fixture) -> None:
    body = fx.client.json("search", dataset=fx.ids["parquet"], split="train", query="PERSON 12")
    expected = [r for r in TRAIN if "person 12" in r["name"]]
    assert [r["row"] for r in body["rows"]] == expected
    assert [r["row_idx"] for r in body["rows"]] == [r["id"] for r in expected]
    assert body["num_rows_total"] == len(expected)
    page = fx.client.json(
        "search", dataset=fx.ids["parquet"], split="train", query="person 1", offset=5, length=3
    )
    hits = [r for r in TRAIN if "person 1" in r["name"]]
    assert [r["row"] for r in page["rows"]] == hits[5:8]
    assert page["num_rows_total"] == len(hits)
    jsonl = fx.client.rows("search", dataset=fx.ids["jsonl"], split="train", query="question 3")
    assert [r["q"] for r in jsonl] == ["question 3"] + [f"question {i}" for i in range(30, 40)]


@pytest.mark.parametrize(
    ("name", "where", "expected"),
    [
        ("parquet", "score >= 100 AND id < 210", [r for r in TRAIN if 200 <= r["id"] < 210]),
        ("parquet", "name = 'person 7' OR id IN (3, 248)", [TRAIN[3], TRAIN[7], TRAIN[248]]),
        ("csv", '"id" > 27', CSV_TRAIN[28:]),
        ("jsonl", "q LIKE '%tion 1_'", [r for r in JSONL if 10 <= int(r["q"].split()[1]) <= 19]),
        ("text", "text = ''", [{"text": ""}]),
    ],
)
def test_filter_returns_the_matching_rows_with_their_indexes(
    fx: Fixture, name: str, where: str, expected: list[dict[str, Any]]
) -> None:
    body = fx.client.json("filter", dataset=fx.ids[name], where=where)
    assert [r["row"] for r in body["rows"]] == expected
    assert body["num_rows_total"] == len(expected)
    if name == "parquet":
        assert [r["row_idx"] for r in body["rows"]] == [r["id"] for r in expected]


def test_image_folder_rows_link_to_the_images_and_carry_labels(fx: Fixture) -> None:
    body = fx.client.json("rows", dataset=fx.ids["images"], split="train")
    features = {f["name"]: f["type"] for f in body["features"]}
    assert features == {
        "image": {"_type": "Image"},
        "label": {"names": ["cat", "dog"], "_type": "ClassLabel"},
    }
    labels = [r["row"]["label"] for r in body["rows"]]
    assert labels == [0, 1, 1]
    images = [httpx.get(r["row"]["image"]["src"], headers=auth(fx)) for r in body["rows"]]
    assert [i.content for i in images] == [RED, BLUE, RED]


def test_size_info_and_parquet_files(fx: Fixture) -> None:
    size = fx.client.json("size", dataset=fx.ids["parquet"])["size"]
    assert size["dataset"]["num_rows"] == 300
    assert {s["split"]: s["num_rows"] for s in size["splits"]} == {"train": 250, "test": 50}
    info = fx.client.json("info", dataset=fx.ids["csv"], config="default")["dataset_info"]
    assert {k: v["num_examples"] for k, v in info["splits"].items()} == {"train": 30, "test": 5}
    assert info["features"]["name"] == {"dtype": "string", "_type": "Value"}
    files = fx.client.json("parquet", dataset=fx.ids["csv"])["parquet_files"]
    assert [f["split"] for f in files] == ["train", "test"]
    converted = httpx.get(files[0]["url"], headers=auth(fx))
    assert converted.status_code == 200 and converted.content[:4] == b"PAR1"


def test_configs_from_the_readme_yaml(fx: Fixture) -> None:
    assert fx.client.rows(dataset=fx.ids["configs"], config="en") == CSV_TRAIN[:3]
    assert fx.client.rows(dataset=fx.ids["configs"], config="fr") == JSONL[:2]


def test_private_dataset_rows_are_refused_to_outsiders(fx: Fixture, server: LiveServer) -> None:
    private = fx.ids["private"]
    assert fx.client.rows(dataset=private) == CSV_TRAIN
    _, stranger_token = server.new_user()
    for token in (None, stranger_token):
        client = ViewerClient(server.url, token)
        for route, params in (
            ("splits", {}),
            ("rows", {}),
            ("first-rows", {}),
            ("search", {"query": "person"}),
            ("filter", {"where": "id = 1"}),
            ("size", {}),
            ("parquet", {}),
            ("parquet-file", {"path": "train.csv"}),
            ("assets", {"row": 0, "column": "name"}),
        ):
            response = client.get(route, dataset=private, **params)
            assert response.status_code == 404, (route, response.status_code)
            assert response.headers["X-Error-Code"] == "RepoNotFound"
            assert "person" not in response.text


def test_malformed_csv_is_a_conversion_failure_with_the_reason(fx: Fixture) -> None:
    response = fx.client.get("rows", dataset=fx.ids["malformed"])
    assert response.status_code == 422
    assert response.headers["X-Error-Code"] == "ConversionFailed"
    assert "Expected 2 columns, got 3" in response.json()["error"]
    failed = fx.client.json("splits", dataset=fx.ids["malformed"])["failed"]
    assert [(f["split"], "Expected 2 columns" in f["error"]) for f in failed] == [("train", True)]


def test_truncated_parquet_is_a_clear_4xx(fx: Fixture) -> None:
    for route in ("rows", "first-rows", "size"):
        response = fx.client.get(route, dataset=fx.ids["truncated"])
        assert response.status_code == 422, (route, response.text)
        assert response.headers["X-Error-Code"] == "DataFileError"
        assert "train.parquet" in response.json()["error"]


@pytest.mark.parametrize(
    ("route", "params", "status", "message"),
    [
        ("filter", {"where": "id = 1; DROP TABLE split_rows"}, 400, "unexpected ';'"),
        ("filter", {"where": "id = (SELECT 1)"}, 400, "expected a value"),
        ("filter", {"where": "read_parquet('/etc/passwd') IS NULL"}, 400, "no column"),
        ("filter", {"where": "name = 'x' OR '1'='1'"}, 400, "a column name"),
        ("filter", {"where": "nope = 1"}, 400, "no column named 'nope'"),
        ("filter", {"where": "name > 3"}, 400, "The query cannot run on this split"),
        ("rows", {"length": 101}, 400, "length"),
        ("rows", {"length": 10**9}, 400, "length"),
        ("rows", {"offset": -1}, 400, "offset"),
        ("rows", {"split": "nope"}, 404, "Split 'nope' not found"),
        ("rows", {"config": "nope"}, 404, "Config 'nope' not found"),
        ("rows", {"revision": "nope"}, 404, "Invalid rev id"),
        ("search", {"query": "x" * 501}, 400, "query"),
        ("assets", {"row": 0, "column": "name"}, 404, "no binary content"),
    ],
)
def test_bad_requests_are_clear_4xx(
    fx: Fixture, route: str, params: dict[str, Any], status: int, message: str
) -> None:
    response = fx.client.get(route, dataset=fx.ids["parquet"], **params)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_a_commit_of_another_repo_is_not_a_revision_of_this_one(fx: Fixture) -> None:
    other = fx.client.get("rows", dataset=fx.ids["private"]).headers["X-Revision"]
    response = fx.client.get("rows", dataset=fx.ids["csv"], revision=other)
    assert response.status_code == 404
    assert response.headers["X-Error-Code"] == "RevisionNotFound"


def test_unknown_dataset_is_repo_not_found(fx: Fixture) -> None:
    response = fx.client.get("splits", dataset=f"{fx.owner.name}/missing")
    assert (response.status_code, response.headers["X-Error-Code"]) == (404, "RepoNotFound")


def auth(fx: Fixture) -> dict[str, str]:
    return {"Authorization": f"Bearer {fx.owner.token}"}


def wait_for_export(api: HfApi, repo: str, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return sorted(api.list_repo_files(repo, repo_type="dataset", revision=EXPORT))
        except RevisionNotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_conversions_are_exported_as_the_refs_convert_parquet_revision(
    fx: Fixture, tmp_path: Path
) -> None:
    repo, api = fx.ids["csv"], fx.owner.api
    fx.client.json("splits", dataset=repo)
    assert wait_for_export(api, repo) == ["default/test/0000.parquet", "default/train/0000.parquet"]
    local = api.hf_hub_download(
        repo,
        "default/train/0000.parquet",
        repo_type="dataset",
        revision=EXPORT,
        cache_dir=tmp_path,
    )
    assert pq.read_table(local).to_pylist() == CSV_TRAIN
    # Parquet files of the repo are exported as they are: the same LFS objects, no copy.
    fx.client.json("splits", dataset=fx.ids["parquet"])
    wait_for_export(api, fx.ids["parquet"])
    exported = api.list_repo_tree(
        fx.ids["parquet"], "default/train", repo_type="dataset", revision=EXPORT
    )
    original = api.list_repo_tree(fx.ids["parquet"], "data", repo_type="dataset")
    train = {f.path: f for f in original if "train" in f.path}
    assert [f.lfs.sha256 for f in exported] == [train[p].lfs.sha256 for p in sorted(train)]


def test_a_conversion_is_made_once_per_content(fx: Fixture, server: LiveServer) -> None:
    rows = people(7, offset=70)
    first = dataset(fx.owner, "same-a", {"train.csv": csv_bytes(rows)})
    second = dataset(fx.owner, "same-b", {"data/train.csv": csv_bytes(rows), "x.md": b"x"})
    assert fx.client.rows(dataset=first) == fx.client.rows(dataset=second) == rows
    cache = server.backend.data_dir / "datasets-cache" / "parquet"
    blob = Blob.from_string(csv_bytes(rows)).id.decode()
    assert [p.name for p in cache.glob(f"*{blob}*")] == [f"csv-{blob}.parquet"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("parquet", ["format:parquet", "modality:tabular"]),
        ("csv", ["format:csv", "modality:tabular"]),
        ("text", ["format:text", "modality:text"]),
        ("images", ["format:imagefolder", "modality:image"]),
    ],
)
def test_dataset_info_tags_name_the_format(fx: Fixture, name: str, expected: list[str]) -> None:
    info = fx.owner.api.dataset_info(fx.ids[name])
    assert [t for t in info.tags if t.startswith(("format:", "modality:"))] == expected


def test_card_tags_stay_beside_the_derived_ones(fx: Fixture) -> None:
    repo = dataset(
        fx.owner, "tagged", {"README.md": b"---\ntags:\n- mine\n---\n", "a.csv": b"x\n1\n"}
    )
    assert fx.owner.api.dataset_info(repo).tags == ["mine", "format:csv", "modality:tabular"]


def test_a_huge_text_cell_is_cut_and_named(fx: Fixture) -> None:
    (item,) = fx.client.json("rows", dataset=fx.ids["long"])["rows"]
    assert (len(item["row"]["t"]), item["row"]["n"], item["truncated_cells"]) == (100_000, 1, ["t"])
