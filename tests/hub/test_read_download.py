"""Downloads through /resolve and /raw (hf-protocol.md §9, §10, §13.3) with the real clients."""

from __future__ import annotations

import hashlib
import json
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huggingface_hub import (
    HfApi,
    HfFileSystem,
    get_hf_file_metadata,
    hf_hub_download,
    hf_hub_url,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from app.repos.models import Repo as RepoRow
from tests.hub.readkit import (  # noqa: F401 - no_xet is an autouse fixture
    Owner,
    add_ref,
    big_bytes,
    commit,
    make_repo,
    new_owner,
    no_xet,
)
from tests.live import LiveServer, start_server

WEIGHTS = big_bytes(3 * 1024 * 1024 + 17)  # spans several 1 MiB store chunks
CONFIG = b'{"model_type": "test"}'


@dataclass
class Repo:
    owner: Owner
    id: str
    repo_pk: int
    v1: str
    head: str


@pytest.fixture(scope="module")
def repo(server: LiveServer) -> Repo:
    owner = new_owner(server)
    row, first = make_repo(owner, "dl", {"config.json": CONFIG, "docs/a.md": b"# a"})
    assert first is not None
    add_ref(owner, row, "refs/tags/v1", first.sha)
    head = commit(owner, row, {"docs/b.md": b"# b"}, {"model.safetensors": WEIGHTS})
    return Repo(owner, f"{owner.name}/dl", row.id, first.sha, head.sha)


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """An empty download cache (HF_HUB_CACHE is read once, when huggingface_hub is imported)."""
    return tmp_path / "hub-cache"


def _downloads(server: LiveServer, repo: Repo) -> int:
    with server.app().state.sessionmaker() as session:
        row = session.get(RepoRow, repo.repo_pk)
        assert row is not None
        return row.downloads


def _settled_downloads(server: LiveServer, repo: Repo) -> int:
    """The count once earlier tests' downloads, counted after their answers, have landed."""
    last = _downloads(server, repo)
    while True:
        time.sleep(0.2)
        now = _downloads(server, repo)
        if now == last:
            return now
        last = now


def test_hf_hub_download_of_regular_and_lfs_files(
    repo: Repo, server: LiveServer, cache: Path
) -> None:
    config = hf_hub_download(
        repo.id, "config.json", endpoint=server.url, cache_dir=cache, token=repo.owner.token
    )
    assert Path(config).read_bytes() == CONFIG
    weights = hf_hub_download(
        repo.id, "model.safetensors", endpoint=server.url, cache_dir=cache, token=repo.owner.token
    )
    assert hashlib.sha256(Path(weights).read_bytes()).digest() == hashlib.sha256(WEIGHTS).digest()
    # The cache names blobs by ETag: the sha256 for LFS files (file_download.py:606-625).
    assert Path(weights).resolve().name == hashlib.sha256(WEIGHTS).hexdigest()


def test_file_metadata_has_commit_etag_and_real_size(repo: Repo, server: LiveServer) -> None:
    url = hf_hub_url(repo.id, "model.safetensors", endpoint=server.url)
    meta = get_hf_file_metadata(url, token=repo.owner.token)
    assert meta.commit_hash == repo.head and meta.size == len(WEIGHTS)
    assert meta.etag == hashlib.sha256(WEIGHTS).hexdigest()
    regular = get_hf_file_metadata(hf_hub_url(repo.id, "config.json", endpoint=server.url))
    assert regular.size == len(CONFIG) and len(regular.etag or "") == 40


def test_snapshot_download_with_patterns_at_a_sha_and_a_tag(
    repo: Repo, server: LiveServer, cache: Path
) -> None:
    folder = Path(
        snapshot_download(
            repo.id,
            allow_patterns=["docs/*"],
            endpoint=server.url,
            cache_dir=cache,
            revision=repo.head,
        )
    )
    assert sorted(p.name for p in (folder / "docs").iterdir()) == ["a.md", "b.md"]
    assert not (folder / "config.json").exists() and folder.name == repo.head
    tagged = Path(snapshot_download(repo.id, revision="v1", endpoint=server.url, cache_dir=cache))
    assert tagged.name == repo.v1 and not (tagged / "docs" / "b.md").exists()
    assert (tagged / "config.json").read_bytes() == CONFIG


def test_exists_helpers(repo: Repo, server: LiveServer) -> None:
    api = HfApi(endpoint=server.url)
    assert api.repo_exists(repo.id) and not api.repo_exists(f"{repo.owner.name}/missing")
    assert api.file_exists(repo.id, "docs/a.md") and not api.file_exists(repo.id, "nope.md")
    assert api.revision_exists(repo.id, "v1") and not api.revision_exists(repo.id, "v9")


def test_missing_things_raise_the_hub_exceptions(
    repo: Repo, server: LiveServer, cache: Path
) -> None:
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(repo.id, "missing.json", endpoint=server.url, cache_dir=cache)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(
            repo.id, "config.json", revision="nope", endpoint=server.url, cache_dir=cache
        )
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(
            f"{repo.owner.name}/nope", "config.json", endpoint=server.url, cache_dir=cache
        )
    answer = httpx.head(f"{server.url}/{repo.id}/resolve/main/missing.json")
    assert answer.status_code == 404 and answer.headers["x-error-code"] == "EntryNotFound"
    assert answer.headers["x-repo-commit"] == repo.head


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [("bytes=10-19", 10, 19), ("bytes=1048570-", 1048570, None), ("bytes=-5", -5, None)],
)
def test_byte_ranges_answer_206(
    repo: Repo, server: LiveServer, header: str, start: int, end: int | None
) -> None:
    answer = httpx.get(
        f"{server.url}/{repo.id}/resolve/main/model.safetensors", headers={"range": header}
    )
    expected = WEIGHTS[start : end + 1] if end is not None else WEIGHTS[start:]
    assert answer.status_code == 206 and answer.content == expected
    first = start if start >= 0 else len(WEIGHTS) + start
    content_range = f"bytes {first}-{first + len(expected) - 1}/{len(WEIGHTS)}"
    assert answer.headers["content-range"] == content_range


def test_range_past_the_end_is_416_and_regular_files_take_ranges(
    repo: Repo, server: LiveServer
) -> None:
    base = f"{server.url}/{repo.id}/resolve/main"
    past = httpx.get(f"{base}/model.safetensors", headers={"range": f"bytes={len(WEIGHTS)}-"})
    assert past.status_code == 416
    part = httpx.get(f"{base}/config.json", headers={"range": "bytes=2-6"})
    assert part.status_code == 206 and part.content == CONFIG[2:7]


def test_head_carries_the_real_length_and_etag_revalidates(repo: Repo, server: LiveServer) -> None:
    url = f"{server.url}/{repo.id}/resolve/{repo.head}/model.safetensors"
    head = httpx.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(WEIGHTS))
    assert head.headers["x-linked-size"] == str(len(WEIGHTS))
    assert head.headers["accept-ranges"] == "bytes"
    assert "model.safetensors" in head.headers["content-disposition"]
    again = httpx.get(url, headers={"if-none-match": head.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_raw_serves_the_git_blob(repo: Repo, server: LiveServer) -> None:
    pointer = httpx.get(f"{server.url}/{repo.id}/raw/main/model.safetensors")
    assert pointer.status_code == 200
    assert pointer.content.startswith(b"version https://git-lfs.github.com/spec/v1\n")
    assert httpx.get(f"{server.url}/{repo.id}/raw/v1/config.json").content == CONFIG


def test_get_of_config_counts_one_download_but_head_and_ranges_do_not(
    repo: Repo, server: LiveServer
) -> None:
    before = _settled_downloads(server, repo)
    base = f"{server.url}/{repo.id}/resolve/main"
    httpx.head(f"{base}/config.json")
    httpx.get(f"{base}/config.json", headers={"range": "bytes=5-"})
    httpx.get(f"{base}/model.safetensors")  # weights count only in repos without config.json
    assert _settled_downloads(server, repo) == before
    assert httpx.get(f"{base}/config.json").status_code == 200
    # The count is written after the answer is sent.
    deadline = time.monotonic() + 5
    while _downloads(server, repo) == before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _downloads(server, repo) == before + 1


def test_hf_file_system_lists_globs_and_reads_ranges(repo: Repo, server: LiveServer) -> None:
    fs = HfFileSystem(endpoint=server.url, token=repo.owner.token, skip_instance_cache=True)
    names = {Path(e["name"]).name for e in fs.ls(repo.id, detail=True)}
    assert names == {".gitattributes", "config.json", "docs", "model.safetensors"}
    assert sorted(fs.glob(f"{repo.id}/docs/*.md")) == [
        f"{repo.id}/docs/a.md",
        f"{repo.id}/docs/b.md",
    ]
    with fs.open(f"{repo.id}/model.safetensors", "rb", block_size=4096) as handle:
        handle.seek(2_000_000)
        assert handle.read(100) == WEIGHTS[2_000_000:2_000_100]
    assert fs.info(f"{repo.id}/model.safetensors")["size"] == len(WEIGHTS)


def test_safetensors_metadata_is_read_with_ranges(server: LiveServer) -> None:
    owner = new_owner(server)
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    weights = struct.pack("<Q", len(header)) + header + b"\x00" * 8
    make_repo(owner, "st", lfs={"model.safetensors": weights})
    meta = HfApi(endpoint=server.url).get_safetensors_metadata(f"{owner.name}/st")
    assert meta.parameter_count == {"F32": 2}


def test_dataset_files_resolve_under_the_datasets_prefix(server: LiveServer, cache: Path) -> None:
    owner = new_owner(server)
    make_repo(owner, "ds", {"data/train.csv": b"a,b\n1,2\n"}, repo_type="dataset")
    path = hf_hub_download(
        f"{owner.name}/ds",
        "data/train.csv",
        repo_type="dataset",
        endpoint=server.url,
        cache_dir=cache,
    )
    assert Path(path).read_bytes() == b"a,b\n1,2\n"
    fs = HfFileSystem(endpoint=server.url, skip_instance_cache=True)
    assert fs.glob(f"datasets/{owner.name}/ds/**/*.csv") == [
        f"datasets/{owner.name}/ds/data/train.csv"
    ]


def test_private_files_are_hidden_from_others(server: LiveServer, cache: Path) -> None:
    owner, other = new_owner(server), new_owner(server)
    make_repo(owner, "hidden", {"config.json": CONFIG}, private=True)
    repo_id = f"{owner.name}/hidden"
    for token in (None, other.token):
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(
                repo_id, "config.json", endpoint=server.url, cache_dir=cache, token=token
            )
    mine = hf_hub_download(
        repo_id, "config.json", endpoint=server.url, cache_dir=cache, token=owner.token
    )
    assert Path(mine).read_bytes() == CONFIG


@pytest.fixture
def presigning_server(server: LiveServer) -> Iterator[LiveServer]:
    if server.backend.name != "postgres":
        pytest.skip("presigned downloads need the S3 store")
    live = start_server(server.backend, {"ATRIUM_S3_PRESIGN_DOWNLOADS": "true"})
    yield live
    live.stop()


def test_lfs_downloads_redirect_to_presigned_s3_urls(
    repo: Repo, presigning_server: LiveServer, cache: Path
) -> None:
    url = f"{presigning_server.url}/{repo.id}/resolve/main/model.safetensors"
    head = httpx.head(url)
    assert head.status_code == 302 and head.headers["x-repo-commit"] == repo.head
    assert head.headers["x-linked-size"] == str(len(WEIGHTS))
    assert "X-Amz-Signature" in head.headers["location"]
    path = hf_hub_download(
        repo.id, "model.safetensors", endpoint=presigning_server.url, cache_dir=cache
    )
    assert Path(path).read_bytes() == WEIGHTS


def test_hf_home_fixture_isolates_the_download_cache(
    repo: Repo, server: LiveServer, hf_home: Path
) -> None:
    path = hf_hub_download(repo.id, "docs/a.md", endpoint=server.url)
    assert Path(path).is_relative_to(hf_home)
