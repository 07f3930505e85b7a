"""The git-lfs batch API (hf-protocol.md §7.2): basic and multipart uploads through the real
huggingface_hub, then the same API driven by hand for what the client never sends wrong."""

from __future__ import annotations

import hashlib
import io
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.errors import BadRequestError, HfHubHTTPError

from tests.hub.readkit import Owner, big_bytes, new_owner, no_xet  # noqa: F401 - autouse
from tests.live import LiveServer, start_server

MiB = 1024 * 1024
LFS_HEADERS = {
    "accept": "application/vnd.git-lfs+json",
    "content-type": "application/vnd.git-lfs+json",
}


@dataclass
class Repo:
    owner: Owner
    repo_id: str

    @property
    def api(self) -> HfApi:
        return self.owner.api

    def batch(self, operation: str, objects: list[dict[str, Any]], **kw: Any) -> httpx.Response:
        return httpx.post(
            f"{self.owner.server.url}/{self.repo_id}.git/info/lfs/objects/batch",
            json={"operation": operation, "transfers": ["basic"], "objects": objects},
            headers={**LFS_HEADERS, **kw.pop("headers", self.auth)},
            **kw,
        )

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.owner.token}"}

    def files(self) -> list[str]:
        return sorted(self.api.list_repo_files(self.repo_id))


def new_repo(server: LiveServer, *, private: bool = False) -> Repo:
    owner = new_owner(server)
    repo_id = f"{owner.name}/lfs{secrets.token_hex(3)}"
    owner.api.create_repo(repo_id, private=private)
    return Repo(owner, repo_id)


def obj(data: bytes) -> dict[str, Any]:
    return {"oid": hashlib.sha256(data).hexdigest(), "size": len(data)}


@pytest.fixture(scope="module")
def repo(server: LiveServer) -> Repo:
    return new_repo(server)


def test_upload_file_from_a_file_object_goes_through_lfs_and_reads_back(
    repo: Repo, hf_home: Any
) -> None:
    data = big_bytes(3 * MiB + 17, seed=1)
    repo.api.upload_file(
        path_or_fileobj=io.BytesIO(data), path_in_repo="w.bin", repo_id=repo.repo_id
    )
    entry = next(iter(repo.api.get_paths_info(repo.repo_id, ["w.bin"])))
    assert entry.lfs is not None and entry.lfs.sha256 == obj(data)["oid"]
    path = hf_hub_download(repo.repo_id, "w.bin", endpoint=repo.owner.server.url)
    assert Path(path).read_bytes() == data


def test_batch_answers_stored_objects_without_actions(repo: Repo) -> None:
    data = b"\x00already" * 100
    repo.api.upload_file(
        path_or_fileobj=io.BytesIO(data), path_in_repo="a.bin", repo_id=repo.repo_id
    )
    answer = repo.batch("upload", [obj(data)]).json()["objects"][0]
    assert answer == obj(data)
    download = repo.batch("download", [obj(data)]).json()["objects"][0]
    href = download["actions"]["download"]["href"]
    got = httpx.get(href, headers=download["actions"]["download"].get("header", {}))
    assert got.content == data


def test_bytes_not_matching_sha256_or_size_are_refused_and_not_stored(repo: Repo) -> None:
    data = b"\x00right bytes" * 50
    action = repo.batch("upload", [obj(data)]).json()["objects"][0]["actions"]["upload"]
    for wrong in (b"\x00wrong bytes" * 50, data + b"x", data[:-1]):
        response = httpx.put(action["href"], content=wrong)
        assert response.status_code == 400, response.text
        assert "sha256" in response.text or "size" in response.text
    assert "actions" in repo.batch("upload", [obj(data)]).json()["objects"][0]


def test_tampered_or_foreign_upload_url_is_forbidden(repo: Repo) -> None:
    data, other = b"\x00one" * 10, b"\x00two" * 10
    action = repo.batch("upload", [obj(data)]).json()["objects"][0]["actions"]["upload"]
    forged = action["href"].replace("size=40", "size=41")
    assert httpx.put(forged, content=data).status_code == 403
    to_other_oid = action["href"].replace(obj(data)["oid"], obj(other)["oid"], 1)
    assert httpx.put(to_other_oid, content=other).status_code in (400, 403)


def test_commit_naming_an_lfs_object_never_uploaded_here_is_refused(
    repo: Repo, server: LiveServer
) -> None:
    # Uploaded to another repo only: knowing its sha256 grants nothing here.
    data = b"\x00elsewhere" * 100
    elsewhere = new_repo(server)
    elsewhere.api.upload_file(
        path_or_fileobj=io.BytesIO(data), path_in_repo="x.bin", repo_id=elsewhere.repo_id
    )
    before = repo.api.model_info(repo.repo_id).sha
    oid = obj(data)["oid"]
    body = (
        '{"key":"header","value":{"summary":"steal"}}\n'
        f'{{"key":"lfsFile","value":{{"path":"x.bin","algo":"sha256","oid":"{oid}","size":1000}}}}\n'
    )
    response = httpx.post(
        f"{server.url}/api/models/{repo.repo_id}/commit/main",
        content=body,
        headers={**repo.auth, "content-type": "application/x-ndjson"},
    )
    assert response.status_code == 400 and "never uploaded" in response.json()["error"]
    assert repo.api.model_info(repo.repo_id).sha == before
    # Sending the bytes proves possession: then the same object is linked without a re-store.
    repo.api.upload_file(
        path_or_fileobj=io.BytesIO(data), path_in_repo="x.bin", repo_id=repo.repo_id
    )
    assert "x.bin" in repo.files()


def test_batch_refuses_malformed_objects_one_by_one(repo: Repo) -> None:
    good = b"\x00fine"
    answer = repo.batch(
        "upload", [{"oid": "NOT-A-SHA", "size": 3}, {"oid": "a" * 64, "size": -1}, obj(good)]
    ).json()["objects"]
    assert [o.get("error", {}).get("code") for o in answer] == [422, 422, None]
    assert "actions" in answer[2]


def test_download_of_an_object_not_in_the_repo_is_a_404_object_error(repo: Repo) -> None:
    answer = repo.batch("download", [obj(b"never")]).json()["objects"][0]
    assert answer["error"]["code"] == 404


def test_anonymous_batch_on_private_repo_asks_for_credentials(server: LiveServer) -> None:
    private = new_repo(server, private=True)
    response = private.batch("download", [obj(b"x")], headers={})
    assert response.status_code == 401 and "lfs-authenticate" in response.headers
    other = new_owner(server)
    response = private.batch(
        "upload", [obj(b"x")], headers={"authorization": f"Bearer {other.token}"}
    )
    assert response.status_code == 404 and response.headers["x-error-code"] == "RepoNotFound"


def test_git_basic_auth_is_accepted(repo: Repo) -> None:
    response = repo.batch("upload", [obj(b"\x00basic")], auth=("git", repo.owner.token), headers={})
    assert response.status_code == 200 and "actions" in response.json()["objects"][0]


def test_locks_api_answers_not_implemented(repo: Repo) -> None:
    for method, path in (("GET", "locks"), ("POST", "locks/verify"), ("POST", "locks")):
        response = httpx.request(
            method,
            f"{repo.owner.server.url}/{repo.repo_id}.git/info/lfs/{path}",
            headers={**LFS_HEADERS, **repo.auth},
            json={},
        )
        assert response.status_code == 501 and "not supported" in response.json()["message"]


def test_verify_answers_for_uploaded_objects_only(repo: Repo) -> None:
    data = b"\x00verify me"
    repo.api.upload_file(
        path_or_fileobj=io.BytesIO(data), path_in_repo="v.bin", repo_id=repo.repo_id
    )
    url = f"{repo.owner.server.url}/{repo.repo_id}.git/info/lfs/verify"
    assert httpx.post(url, json=obj(data), headers=repo.auth).status_code == 200
    assert httpx.post(url, json=obj(b"nope"), headers=repo.auth).status_code == 404


# --- multipart: a server whose body limit forces parts (and S3 gets presigned parts) ------


@pytest.fixture(scope="module")
def small_server(server: LiveServer) -> Iterator[LiveServer]:
    live = start_server(
        server.backend,
        {"ATRIUM_MAX_REQUEST_BODY": str(6 * MiB), "ATRIUM_LFS_PART_SIZE": str(5 * MiB)},
    )
    yield live
    live.stop()


def test_multipart_upload_assembles_and_verifies_parts(
    small_server: LiveServer, hf_home: Any
) -> None:
    target = new_repo(small_server)
    data = big_bytes(12 * MiB + 5, seed=7)
    response = httpx.post(
        f"{small_server.url}/{target.repo_id}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic", "multipart"], "objects": [obj(data)]},
        headers={**LFS_HEADERS, **target.auth},
    )
    header = response.json()["objects"][0]["actions"]["upload"]["header"]
    assert header["chunk_size"] == str(5 * MiB) and {"1", "2", "3"} <= set(header)
    # On S3 the parts go straight to the bucket; on the local store through Atrium.
    through_atrium = header["1"].startswith(small_server.url)
    assert through_atrium == (small_server.backend.name == "sqlite")
    target.api.upload_file(
        path_or_fileobj=io.BytesIO(data), path_in_repo="big.bin", repo_id=target.repo_id
    )
    path = hf_hub_download(target.repo_id, "big.bin", endpoint=small_server.url)
    assert Path(path).read_bytes() == data


def test_multipart_with_a_wrong_part_stores_nothing(small_server: LiveServer) -> None:
    target = new_repo(small_server)
    data = big_bytes(11 * MiB, seed=8)
    response = httpx.post(
        f"{small_server.url}/{target.repo_id}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic", "multipart"], "objects": [obj(data)]},
        headers={**LFS_HEADERS, **target.auth},
    )
    upload = response.json()["objects"][0]["actions"]["upload"]
    size = int(upload["header"]["chunk_size"])
    etags = []
    for n in (1, 2, 3):
        part = data[(n - 1) * size : n * size]
        if n == 2:
            part = part[:-1] + b"!"  # one corrupted byte
        put = httpx.put(upload["header"][str(n)], content=part)
        assert put.status_code == 200
        etags.append({"partNumber": n, "etag": put.headers["etag"]})
    done = httpx.post(upload["href"], json={"oid": obj(data)["oid"], "parts": etags})
    assert done.status_code == 400 and "sha256" in done.text
    again = httpx.post(
        f"{small_server.url}/{target.repo_id}.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["multipart"], "objects": [obj(data)]},
        headers={**LFS_HEADERS, **target.auth},
    )
    assert "actions" in again.json()["objects"][0]


def test_too_large_commit_body_is_refused(small_server: LiveServer) -> None:
    target = new_repo(small_server)
    before = target.api.model_info(target.repo_id).sha
    with pytest.raises((HfHubHTTPError, BadRequestError)) as caught:
        target.api.create_commit(
            target.repo_id,
            [CommitOperationAdd(f"f{n}.txt", b"x" * (2 * MiB)) for n in range(4)],
            commit_message="too big",
        )
    assert caught.value.response.status_code == 413
    assert target.api.model_info(target.repo_id).sha == before


def test_duplicate_links_objects_of_a_readable_source_repo_only(
    server: LiveServer,
) -> None:
    source = new_repo(server)
    data = b"\x00shared weights" * 64
    source.api.upload_file(
        path_or_fileobj=io.BytesIO(data), path_in_repo="s.bin", repo_id=source.repo_id
    )
    target = new_repo(server)
    url = f"{server.url}/api/models/{source.repo_id}/lfs-files/duplicate"
    missing = "b" * 64
    body = {
        "target": {"type": "model", "name": target.repo_id},
        "files": [{"sha256": obj(data)["oid"], "filename": "s.bin"}, {"sha256": missing}],
    }
    # The target's owner cannot read a private source: nothing is linked.
    source.api.update_repo_settings(source.repo_id, private=True)
    hidden = httpx.post(url, json=body, headers=target.auth)
    assert hidden.status_code == 404 and hidden.headers["x-error-code"] == "RepoNotFound"
    source.api.update_repo_settings(source.repo_id, private=False)
    answer = httpx.post(url, json=body, headers=target.auth)
    assert answer.status_code == 200
    assert [f["sha256"] for f in answer.json()["failed"]] == [missing]
    copy = {"path": "copied.bin", "algo": "sha256", "oid": obj(data)["oid"]}  # no size
    lines = '{"key":"header","value":{"summary":"copy"}}\n' + json.dumps(
        {"key": "lfsFile", "value": copy}
    )
    done = httpx.post(
        f"{server.url}/api/models/{target.repo_id}/commit/main",
        content=lines,
        headers={**target.auth, "content-type": "application/x-ndjson"},
    )
    assert done.status_code == 200, done.text
    assert "copied.bin" in target.files()


def test_basic_transfer_over_the_body_limit_streams_and_checks_its_signed_size(
    small_server: LiveServer,
) -> None:
    """git-lfs knows only the basic transfer: an object over ATRIUM_MAX_REQUEST_BODY still goes
    up in one PUT, bounded by the size signed into its URL rather than by the body limit."""
    target = new_repo(small_server)
    data = big_bytes(7 * MiB, seed=9)
    batch = f"{small_server.url}/{target.repo_id}.git/info/lfs/objects/batch"
    body = {"operation": "upload", "transfers": ["basic"], "objects": [obj(data)]}
    answer = httpx.post(batch, json=body, headers={**LFS_HEADERS, **target.auth})
    upload = answer.json()["objects"][0]["actions"]["upload"]
    longer = httpx.put(upload["href"], content=data + b"!", headers=upload.get("header", {}))
    assert longer.status_code == 400 and "declared size" in longer.text
    again = httpx.post(batch, json=body, headers={**LFS_HEADERS, **target.auth})
    assert "upload" in again.json()["objects"][0]["actions"]  # nothing of it was kept
    done = httpx.put(upload["href"], content=data, headers=upload.get("header", {}))
    assert done.status_code == 200, done.text
    download = {**body, "operation": "download"}
    found = httpx.post(batch, json=download, headers={**LFS_HEADERS, **target.auth}).json()
    action = found["objects"][0]["actions"]["download"]
    got = httpx.get(action["href"], headers=action.get("header", {}), follow_redirects=True)
    assert got.content == data
    # Any other route keeps the limit.
    commit = f"{small_server.url}/api/models/{target.repo_id}/commit/main"
    assert httpx.post(commit, content=b"x" * (7 * MiB), headers=target.auth).status_code == 413
