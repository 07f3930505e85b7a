"""Conversion on push (issue 22): a commit on a dataset's default branch — through the client
or git — is converted and exported to `refs/convert/parquet` without anybody calling the
viewer, follows the branch's new head, and a server that stopped before converting converts
after its restart (the work is a durable event consumer)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from huggingface_hub import HfApi

from tests.datasets.kit import csv_bytes, people
from tests.git.gitkit import Git, repo_url
from tests.live import Backend, private_backend, start_server

EXPORT = "refs/convert/parquet"
POLL = {"ATRIUM_EVENTS_POLL_SECONDS": "0.5"}


@pytest.fixture
def own(backend_name: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Backend]:
    """A database and store of their own: no other server's poller converts for these."""
    endpoint = request.getfixturevalue("s3_endpoint") if backend_name == "postgres" else None
    with private_backend(backend_name, tmp_path / "hub", endpoint) as backend:
        yield backend


def exported_rows(api: HfApi, repo: str, tmp_path: Path, timeout: float = 90) -> list[dict]:
    """The rows of the export's train split, once it is there, read at the commit the export
    ref names (the ref may move on between two requests while the export follows main)."""
    deadline = time.monotonic() + timeout
    while True:
        refs = api.list_repo_refs(repo, repo_type="dataset")
        commits = [ref.target_commit for ref in refs.converts if ref.ref == EXPORT]
        if commits:
            local = api.hf_hub_download(
                repo, "default/train/0000.parquet", repo_type="dataset", revision=commits[0],
                cache_dir=tmp_path / secrets.token_hex(3),
            )  # fmt: skip
            return pq.read_table(local).to_pylist()
        if time.monotonic() > deadline:
            raise AssertionError(f"no {EXPORT} of {repo} after {timeout} s")
        time.sleep(0.3)


def wait_for_rows(api: HfApi, repo: str, tmp_path: Path, rows: list[dict]) -> None:
    deadline = time.monotonic() + 90
    while exported_rows(api, repo, tmp_path) != rows:
        assert time.monotonic() < deadline, "the export did not follow the branch"
        time.sleep(0.3)


def test_a_push_is_converted_without_the_viewer(own: Backend, tmp_path: Path) -> None:
    live = start_server(own, POLL)
    try:
        owner, token = live.new_user()
        api = HfApi(endpoint=live.url, token=token)
        # Through the client (Xet on, as by default).
        repo = f"{owner}/pushed-{secrets.token_hex(2)}"
        api.create_repo(repo, repo_type="dataset")
        first = people(5)
        api.upload_file(
            path_or_fileobj=csv_bytes(first), path_in_repo="train.csv", repo_id=repo,
            repo_type="dataset",
        )  # fmt: skip
        assert exported_rows(api, repo, tmp_path) == first
        # The export follows the branch.
        second = people(8, offset=100)
        api.upload_file(
            path_or_fileobj=csv_bytes(second), path_in_repo="train.csv", repo_id=repo,
            repo_type="dataset",
        )  # fmt: skip
        wait_for_rows(api, repo, tmp_path, second)

        # Through git push.
        pushed = f"{owner}/git-{secrets.token_hex(2)}"
        api.create_repo(pushed, repo_type="dataset")
        git = Git(tmp_path / "git")
        url = repo_url(live, pushed, token, repo_type="dataset")
        work = git.clone(url, tmp_path / "clone")
        rows = people(4, offset=50)
        git.commit_files(work, {"train.csv": csv_bytes(rows)}, "add rows")
        git.run("push", "origin", "HEAD:main", cwd=work)
        assert exported_rows(api, pushed, tmp_path) == rows
    finally:
        live.stop()


def test_a_restart_converts_what_a_stopped_server_had_not(own: Backend, tmp_path: Path) -> None:
    quiet = start_server(own, {"ATRIUM_EVENTS_POLL_SECONDS": "0"})  # no poller
    owner, token = quiet.new_user()
    api = HfApi(endpoint=quiet.url, token=token)
    repo = f"{owner}/later-{secrets.token_hex(2)}"
    api.create_repo(repo, repo_type="dataset")
    rows = people(6, offset=7)
    api.upload_file(
        path_or_fileobj=csv_bytes(rows), path_in_repo="train.csv", repo_id=repo,
        repo_type="dataset",
    )  # fmt: skip
    time.sleep(1.5)
    try:
        refs = api.list_repo_refs(repo, repo_type="dataset", include_pull_requests=True)
        assert refs.converts == []  # nothing converts on the commit's own thread
    finally:
        quiet.stop()
    live = start_server(own, POLL)
    try:
        api = HfApi(endpoint=live.url, token=token)
        assert exported_rows(api, repo, tmp_path) == rows
    finally:
        live.stop()
