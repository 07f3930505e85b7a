"""Backup and restore as README.md documents it: dump the database, then copy the bucket;
restore both into a fresh database and bucket, and `atrium fsck` passes there."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, hf_hub_download

from app.config import Settings
from app.main import create_app
from app.maintenance import copy_objects
from tests.hub.readkit import make_repo, new_owner, no_xet
from tests.live import Backend, LiveServer, private_backend, start_server

__all__ = ["no_xet"]  # the autouse fixture: downloads over plain HTTP

WEIGHTS = bytes(range(256)) * 64


@contextmanager
def app_on(backend: Backend) -> Iterator[Any]:
    """An in-process app on a backend's database and store (as `atrium` commands build it)."""
    saved = dict(os.environ)
    os.environ.update(backend.settings_env())
    try:
        app = create_app(Settings())
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield app
    finally:
        app.state.engine.dispose()


def dump_database(source: Backend, target: Backend, work: Path) -> None:
    """`pg_dump -Fc` then `pg_restore` into the empty target; SQLite's online backup API."""
    if source.name == "sqlite":
        with (
            sqlite3.connect(source.data_dir / "atrium.db") as src,
            sqlite3.connect(target.data_dir / "atrium.db") as dst,
        ):
            src.backup(dst)
        return
    plain = {
        name: url.replace("+psycopg", "")
        for name, url in (
            ("source", source.env["ATRIUM_DATABASE_URL"]),
            ("target", target.env["ATRIUM_DATABASE_URL"]),
        )
    }
    dump = work / "atrium.dump"
    subprocess.run(["pg_dump", "-Fc", "-f", str(dump), plain["source"]], check=True)
    subprocess.run(["pg_restore", "--no-owner", "-d", plain["target"], str(dump)], check=True)


@pytest.fixture(scope="module")
def restored(
    own_server: LiveServer,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[tuple[LiveServer, dict[str, str]]]:
    """A hub with content, backed up, restored into a new database and bucket, served."""
    owner = new_owner(own_server)
    repo, _ = make_repo(owner, "backed-up", {"config.json": b"{}"}, {"model.bin": WEIGHTS})
    HfApi(endpoint=own_server.url, token=owner.token).upload_file(
        path_or_fileobj=b"second revision", path_in_repo="notes.txt", repo_id=repo.repo_id
    )
    sha = HfApi(endpoint=own_server.url, token=owner.token).model_info(repo.repo_id).sha
    assert sha is not None
    work = tmp_path_factory.mktemp("restore")
    endpoint = (
        request.getfixturevalue("s3_endpoint") if own_server.backend.name != "sqlite" else None
    )
    with private_backend(own_server.backend.name, work / "data", endpoint) as target:
        target.data_dir.mkdir(parents=True)
        dump_database(own_server.backend, target, work)  # 1. the database
        with app_on(own_server.backend) as source_app, app_on(target) as target_app:
            target_app.state.blobs.check()  # creates the fresh bucket
            copied, _ = copy_objects(source_app.state.blobs, target_app.state.blobs)  # 2.
        assert copied > 0
        live = start_server(target)
        yield live, {"repo_id": repo.repo_id, "token": owner.token, "sha": sha}
        live.stop()


def test_restored_hub_passes_fsck_and_serves_the_same_revisions(
    restored: tuple[LiveServer, dict[str, str]], hf_home: Path
) -> None:
    live, facts = restored
    fsck = live.cli("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "problem" not in fsck.stdout
    api = HfApi(endpoint=live.url, token=facts["token"])  # tokens are in the database
    assert api.model_info(facts["repo_id"]).sha == facts["sha"]
    path = hf_hub_download(facts["repo_id"], "model.bin", endpoint=live.url, token=facts["token"])
    assert Path(path).read_bytes() == WEIGHTS


def test_fsck_on_the_restore_catches_an_object_the_copy_missed(
    restored: tuple[LiveServer, dict[str, str]],
) -> None:
    live, _ = restored
    blobs = live.app().state.blobs
    lfs_keys = [key for key, _ in blobs.keys("lfs")]
    assert lfs_keys
    blobs.delete(lfs_keys[0])
    fsck = live.cli("fsck")
    assert fsck.returncode == 1
    assert lfs_keys[0].removeprefix("lfs/") in fsck.stdout
