"""The real huggingface_hub client with default settings (Xet on) against the live server:
uploads go through xet-write-token and the CAS, downloads reconstruct from the CAS, and the
same files still download as plain bytes for clients that do not speak Xet."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import httpx
import pytest
from huggingface_hub import (
    CommitOperationAdd,
    HfApi,
    HfFileSystem,
    constants,
    hf_hub_download,
    snapshot_download,
)

from tests.git.gitkit import Git, repo_url
from tests.live import Backend, LiveServer, start_server
from tests.xet.xetkit import CasClient, stored_xorb_bytes

MB = 1024 * 1024


def weights(size: int, seed: int | None = None) -> bytes:
    """Half random, half repetitive: exercises both stored and compressed chunks."""
    half = size // 2
    rng = os.urandom(half) if seed is None else (bytes([seed]) * 8 + os.urandom(half - 8))
    return rng + (b"\x00\x01\x02\x03" * (size - half))[: size - half]


@pytest.fixture
def api(server: LiveServer, user: tuple[str, str], hf_home: Path) -> HfApi:
    assert not constants.HF_HUB_DISABLE_XET, "these tests need the client's default (Xet on)"
    return HfApi(endpoint=server.url, token=user[1])


def new_repo(api: HfApi, user: tuple[str, str], *, private: bool = False) -> str:
    repo = f"{user[0]}/xet-{secrets.token_hex(3)}"
    api.create_repo(repo, private=private)
    return repo


def test_upload_file_then_download_through_xet_and_plain(
    api: HfApi, server: LiveServer, user: tuple[str, str], tmp_path: Path
) -> None:
    repo = new_repo(api, user)
    data = weights(3 * MB)
    api.upload_file(path_or_fileobj=data, path_in_repo="model.safetensors", repo_id=repo)
    url = f"{server.url}/{repo}/resolve/main/model.safetensors"
    auth = {"authorization": f"Bearer {user[1]}"}
    head = httpx.head(url, headers=auth)
    sha = hashlib.sha256(data).hexdigest()
    assert head.headers["x-linked-etag"] == f'"{sha}"'
    assert head.headers["x-linked-size"] == str(len(data))
    assert len(head.headers["x-xet-hash"]) == 64
    assert 'rel="xet-auth"' in head.headers["link"]

    (listed,) = api.get_paths_info(repo, ["model.safetensors"])
    assert listed.xet_hash == head.headers["x-xet-hash"]  # lets the client skip the HEAD

    path = hf_hub_download(repo, "model.safetensors", endpoint=server.url, token=user[1])
    assert Path(path).read_bytes() == data
    anonymous = hf_hub_download(
        repo, "model.safetensors", endpoint=server.url, token=False, force_download=True
    )
    assert Path(anonymous).read_bytes() == data
    # Plain clients (curl, git-lfs): the bytes, whole and by range, reconstructed by the server.
    assert httpx.get(url, headers=auth).content == data
    part = httpx.get(url, headers={**auth, "range": "bytes=1000000-2100000"})
    assert part.status_code == 206 and part.content == data[1000000:2100001]
    # HfFileSystem reads byte ranges of the same file.
    fs = HfFileSystem(endpoint=server.url, token=user[1])
    with fs.open(f"{repo}/model.safetensors", "rb", block_size=MB) as handle:
        handle.seek(2 * MB - 10)
        assert handle.read(20) == data[2 * MB - 10 : 2 * MB + 10]


def test_xet_uploaded_file_downloads_with_xet_disabled(
    api: HfApi, server: LiveServer, user: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(api, user)
    data = weights(MB + 17)
    api.upload_file(path_or_fileobj=data, path_in_repo="big.bin", repo_id=repo)
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    path = hf_hub_download(repo, "big.bin", endpoint=server.url, token=user[1])
    assert Path(path).read_bytes() == data


def test_upload_folder_and_snapshot_download(
    api: HfApi, server: LiveServer, user: tuple[str, str], tmp_path: Path
) -> None:
    repo = new_repo(api, user, private=True)
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    files = {
        "config.json": b'{"model_type": "bert"}',
        "model.safetensors": weights(2 * MB),
        "sub/shard-1.bin": weights(MB + 1),
        "empty.bin": b"",
    }
    for name, content in files.items():
        (folder / name).write_bytes(content)
    api.upload_folder(folder_path=folder, repo_id=repo, commit_message="weights")
    local = Path(snapshot_download(repo, endpoint=server.url, token=user[1]))
    for name, content in files.items():
        assert (local / name).read_bytes() == content


def test_create_commit_with_several_files_and_a_pull_request(
    api: HfApi, server: LiveServer, user: tuple[str, str]
) -> None:
    repo = new_repo(api, user)
    first, second = weights(MB), weights(MB + 5)
    api.create_commit(
        repo,
        [
            CommitOperationAdd("a.safetensors", first),
            CommitOperationAdd("b.safetensors", second),
        ],
        commit_message="two",
    )
    pr = api.create_commit(
        repo,
        [CommitOperationAdd("c.safetensors", weights(MB))],
        commit_message="pr",
        create_pr=True,
    )
    assert pr.pr_num is not None
    for name, content in (("a.safetensors", first), ("b.safetensors", second)):
        path = hf_hub_download(repo, name, endpoint=server.url, token=user[1], force_download=True)
        assert Path(path).read_bytes() == content


def test_reupload_sends_and_stores_only_changed_chunks(
    api: HfApi,
    server: LiveServer,
    user: tuple[str, str],
    hf_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    repo = new_repo(api, user)
    size = 8 * MB
    data = bytearray(os.urandom(size))
    api.upload_file(path_or_fileobj=bytes(data), path_in_repo="w.bin", repo_id=repo)
    before = stored_xorb_bytes(server)
    api.upload_file(path_or_fileobj=bytes(data), path_in_repo="copy.bin", repo_id=repo)
    assert stored_xorb_bytes(server) == before  # identical content: nothing stored again
    start = size // 2
    data[start : start + size // 100] = os.urandom(size // 100)  # 1% of the bytes changed
    # A client without a local cache (another machine) dedups through the global chunk query.
    monkeypatch.setenv("HF_HOME", str(hf_home.parent / "other-machine"))
    api.upload_file(path_or_fileobj=bytes(data), path_in_repo="w.bin", repo_id=repo)
    added = stored_xorb_bytes(server) - before
    assert 0 < added < size * 0.05, added
    path = hf_hub_download(repo, "w.bin", endpoint=server.url, token=user[1])
    assert Path(path).read_bytes() == bytes(data)


def test_lfs_uploaded_file_reads_with_xet_on_and_then_dedups_into_xet(
    api: HfApi, server: LiveServer, user: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that came by LFS downloads over plain HTTP for a Xet client (no X-Xet-Hash);
    the same content uploaded later through Xet links the LFS object to its Xet file."""
    repo = new_repo(api, user)
    data = weights(MB + 3)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    api.upload_file(path_or_fileobj=data, path_in_repo="lfs.bin", repo_id=repo)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    url = f"{server.url}/{repo}/resolve/main/lfs.bin"
    auth = {"authorization": f"Bearer {user[1]}"}
    assert "x-xet-hash" not in httpx.head(url, headers=auth).headers
    path = hf_hub_download(repo, "lfs.bin", endpoint=server.url, token=user[1])
    assert Path(path).read_bytes() == data
    api.upload_file(path_or_fileobj=data, path_in_repo="again.bin", repo_id=repo)
    assert "x-xet-hash" in httpx.head(url, headers=auth).headers
    for name in ("lfs.bin", "again.bin"):
        got = hf_hub_download(repo, name, endpoint=server.url, token=user[1], force_download=True)
        assert Path(got).read_bytes() == data
        assert httpx.get(f"{server.url}/{repo}/resolve/main/{name}", headers=auth).content == data


def test_git_lfs_downloads_a_xet_uploaded_file(
    api: HfApi, server: LiveServer, user: tuple[str, str]
) -> None:
    """git-lfs asks the batch API for the object and GETs its href: the server reconstructs
    it from the xorbs (no `lfs/<oid>` blob was ever written)."""
    repo = new_repo(api, user)
    data = weights(MB + 9)
    api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo)
    oid = hashlib.sha256(data).hexdigest()
    lfs_json = "application/vnd.git-lfs+json"
    batch = httpx.post(
        f"{server.url}/{repo}.git/info/lfs/objects/batch",
        json={"operation": "download", "objects": [{"oid": oid, "size": len(data)}]},
        headers={
            "accept": lfs_json,
            "content-type": lfs_json,
            "authorization": f"Bearer {user[1]}",
        },
    )
    action = batch.json()["objects"][0]["actions"]["download"]
    got = httpx.get(action["href"], headers=action.get("header", {}), follow_redirects=True)
    assert got.status_code == 200 and got.content == data


def test_git_clone_with_git_lfs_gets_a_xet_uploaded_file(
    api: HfApi, server: LiveServer, user: tuple[str, str], tmp_path: Path
) -> None:
    repo = new_repo(api, user, private=True)
    data = weights(MB + 11)
    api.upload_file(path_or_fileobj=data, path_in_repo="model.safetensors", repo_id=repo)
    git = Git(tmp_path / "git-home")
    git.run("lfs", "install", "--skip-repo")
    clone = tmp_path / "clone"
    git.run("clone", repo_url(server, repo, user[1]), str(clone))
    assert (clone / "model.safetensors").read_bytes() == data


def test_s3_backend_hands_out_presigned_range_urls(
    backend: Backend, user: tuple[str, str], hf_home: Path
) -> None:
    """With S3 and presigned downloads on, xorb bytes go straight from S3 to the client, each
    URL signed together with its one Range header."""
    if "ATRIUM_S3_ENDPOINT_URL" not in backend.env:
        pytest.skip("needs the S3 backend")
    live = start_server(backend, {"ATRIUM_S3_PRESIGN_DOWNLOADS": "true"})
    try:
        api = HfApi(endpoint=live.url, token=user[1])
        repo = new_repo(api, user)
        data = weights(MB + 21)
        api.upload_file(path_or_fileobj=data, path_in_repo="w.bin", repo_id=repo)
        cas = CasClient.connect(live, user[1], repo, scope="read")
        hub_auth = {"authorization": f"Bearer {user[1]}"}
        head = httpx.head(f"{live.url}/{repo}/resolve/main/w.bin", headers=hub_auth)
        answer = httpx.get(
            f"{cas.cas}/v2/reconstructions/{head.headers['x-xet-hash']}", headers=cas.auth
        ).json()
        for entries in answer["xorbs"].values():
            for entry in entries:
                assert entry["url"].startswith(backend.env["ATRIUM_S3_ENDPOINT_URL"])
                assert "X-Amz-SignedHeaders=host%3Brange" in entry["url"]
                (one,) = entry["ranges"]
                span = f"bytes={one['bytes']['start']}-{one['bytes']['end']}"
                assert httpx.get(entry["url"], headers={"range": span}).status_code == 206
        path = hf_hub_download(repo, "w.bin", endpoint=live.url, token=user[1])
        assert Path(path).read_bytes() == data
    finally:
        live.stop()
