"""The viewer shows files of at most 1,000 columns, as the Hub's does: a wider CSV fails its
conversion with a message that says so (no conversion of 200,000 columns is attempted), a
wider parquet file is refused from its footer, and the dataset page says why in one line."""

from __future__ import annotations

import secrets
import time

import httpx
import pyarrow as pa
import pytest
from huggingface_hub import HfApi

from app.datasets.convert import MAX_COLUMNS
from tests.datasets.kit import VIEWER, parquet_bytes
from tests.live import LiveServer

WIDE = MAX_COLUMNS + 500


@pytest.fixture
def owner(server: LiveServer) -> tuple[HfApi, str, str]:
    name, token = server.new_user()
    return HfApi(endpoint=server.url, token=token), name, token


def wide_csv(columns: int) -> bytes:
    header = ",".join(f"c{n}" for n in range(columns))
    row = ",".join("1" for _ in range(columns))
    return f"{header}\n{row}\n{row}\n".encode()


def splits(server: LiveServer, dataset: str, token: str) -> dict[str, object]:
    auth = {"Authorization": f"Bearer {token}"}
    deadline = time.monotonic() + 60
    while True:
        body = httpx.get(f"{server.url}{VIEWER}/splits", params={"dataset": dataset},
                         headers=auth, timeout=30).json()  # fmt: skip
        if not body["pending"] or time.monotonic() > deadline:
            return dict(body)
        time.sleep(0.2)


def test_a_csv_past_the_column_limit_fails_to_convert_with_a_clear_message(
    server: LiveServer, owner: tuple[HfApi, str, str]
) -> None:
    api, name, token = owner
    dataset = f"{name}/wide-{secrets.token_hex(3)}"
    api.create_repo(dataset, repo_type="dataset")
    api.upload_file(path_or_fileobj=wide_csv(WIDE), path_in_repo="data.csv", repo_id=dataset,
                    repo_type="dataset")  # fmt: skip
    body = splits(server, dataset, token)
    (failed,) = body["failed"]  # type: ignore[misc]
    assert f"{WIDE:,} columns" in failed["error"] and f"{MAX_COLUMNS:,}" in failed["error"]
    rows = httpx.get(
        f"{server.url}{VIEWER}/first-rows",
        params={"dataset": dataset},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert rows.status_code == 422 and "columns" in rows.json()["error"]
    page = httpx.get(f"{server.url}/datasets/{dataset}",
                     headers={"Authorization": f"Bearer {token}"}, timeout=30)  # fmt: skip
    assert page.status_code == 200 and "columns" in page.text
    assert len(page.content) < 200_000


def test_a_parquet_file_past_the_column_limit_is_refused_from_its_footer(
    server: LiveServer, owner: tuple[HfApi, str, str]
) -> None:
    api, name, token = owner
    dataset = f"{name}/wide-pq-{secrets.token_hex(3)}"
    api.create_repo(dataset, repo_type="dataset")
    table = pa.table({f"c{n}": [1, 2] for n in range(WIDE)})
    api.upload_file(path_or_fileobj=parquet_bytes(table), path_in_repo="data.parquet",
                    repo_id=dataset, repo_type="dataset")  # fmt: skip
    auth = {"Authorization": f"Bearer {token}"}
    rows = httpx.get(f"{server.url}{VIEWER}/first-rows", params={"dataset": dataset},
                     headers=auth, timeout=30)  # fmt: skip
    assert rows.status_code == 422
    assert rows.headers["X-Error-Code"] == "TooManyColumnsError"
    assert f"{WIDE:,} columns" in rows.json()["error"]
    page = httpx.get(f"{server.url}/datasets/{dataset}", headers=auth, timeout=30)
    assert page.status_code == 200 and f"{WIDE:,} columns" in page.text
