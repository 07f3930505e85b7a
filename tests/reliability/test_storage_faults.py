"""Storage faults (issue 10 §3): the object store fails, stalls or dies mid-download behind a
fault proxy on loopback. Clients get a retryable 503 (or a cut connection, never a short file
passed off as whole), nothing is written half, and once the store is back the same requests
succeed and fsck is clean. S3 only: the proxy sits between the server and moto."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from app.repos.fsck import fsck
from tests.live import Backend, LiveServer, start_server
from tests.reliability.faultproxy import FaultProxy
from tests.reliability.figures import REFUSED, record

LARGE = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def proxied(backend: Backend) -> Iterator[tuple[LiveServer, FaultProxy]]:
    if backend.name != "postgres":
        pytest.skip("storage faults are injected between the server and S3")
    proxy = FaultProxy(backend.env["ATRIUM_S3_ENDPOINT_URL"])
    live = start_server(backend, {"ATRIUM_S3_ENDPOINT_URL": proxy.url})
    yield live, proxy
    live.stop()
    proxy.close()


def commit(client: httpx.Client, repo_id: str, path: str, data: bytes) -> httpx.Response:
    lines = [
        {"key": "header", "value": {"summary": "fault"}},
        {"key": "file", "value": {"path": path, "content": data.decode(), "encoding": "utf-8"}},
    ]
    return client.post(
        f"/api/models/{repo_id}/commit/main",
        content="\n".join(json.dumps(line) for line in lines),
        headers={"Content-Type": "application/x-ndjson"},
    )


def upload_lfs(client: httpx.Client, repo_id: str, data: bytes) -> httpx.Response:
    oid = hashlib.sha256(data).hexdigest()
    lfs = {"Accept": "application/vnd.git-lfs+json"}
    body = {"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]}
    answer = client.post(f"/{repo_id}.git/info/lfs/objects/batch", json=body, headers=lfs)
    if answer.status_code != 200:
        return answer
    actions = answer.json()["objects"][0].get("actions", {})
    if "upload" in actions:
        put = actions["upload"]
        answer = client.put(put["href"], content=data, headers=put.get("header", {}))
        if answer.status_code != 200:
            return answer
    line = {"key": "lfsFile", "value": {"path": "big.bin", "algo": "sha256", "oid": oid}}
    header = {"key": "header", "value": {"summary": "big"}}
    return client.post(
        f"/api/models/{repo_id}/commit/main",
        content=json.dumps(header) + "\n" + json.dumps(line),
        headers={"Content-Type": "application/x-ndjson"},
    )


@contextmanager
def seeded(server: LiveServer, data: bytes) -> Iterator[tuple[httpx.Client, str, str]]:
    """A signed-in client, a new repo holding `data` as big.bin (LFS), and its head commit."""
    name, token = server.new_user()
    with httpx.Client(base_url=server.url, timeout=120) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        assert client.post("/api/repos/create", json={"name": "faults"}).status_code == 200
        repo_id = f"{name}/faults"
        assert upload_lfs(client, repo_id, data).status_code == 200
        yield client, repo_id, client.get(f"/api/models/{repo_id}").json()["sha"]


def test_a_failing_store_gives_503s_and_the_retry_succeeds(
    proxied: tuple[LiveServer, FaultProxy],
) -> None:
    server, proxy = proxied
    big = secrets.token_hex(LARGE // 2).encode()
    with seeded(server, big) as (client, repo_id, head):
        with proxy.fault("down"):
            for answer in (
                client.get(f"/{repo_id}/resolve/main/big.bin"),
                commit(client, repo_id, "new.txt", b"new"),
                upload_lfs(client, repo_id, secrets.token_hex(1000).encode()),
                client.get("/health"),
            ):
                assert answer.status_code == 503, (answer.request.url, answer.text[:300])
                record(REFUSED)
        assert client.get(f"/api/models/{repo_id}").json()["sha"] == head

        with proxy.fault("cut", cut_after=LARGE // 3):
            try:
                got = client.get(f"/{repo_id}/resolve/main/big.bin")
            except httpx.HTTPError:
                pass  # the connection was cut: the client knows the body is incomplete
            else:  # a failure before the headers may answer 503; never a wrong 200
                assert got.status_code == 503 or got.content == big, got.status_code
            record(REFUSED)

        # The store is back: the same requests succeed.
        assert commit(client, repo_id, "new.txt", b"new").status_code == 200
        got = client.get(f"/{repo_id}/resolve/main/big.bin")
        assert got.status_code == 200 and got.content == big
    app = server.app()
    report = fsck(app.state.sessionmaker, app.state.blobs)
    assert report.ok, report.problems


def test_a_stalled_store_times_out_into_503s_and_the_retry_succeeds(
    proxied: tuple[LiveServer, FaultProxy],
) -> None:
    """A store that accepts connections and never answers must not hang clients for ever:
    after ATRIUM_S3_TIMEOUT (and botocore's retries) they get a 503 they can retry."""
    shared, proxy = proxied
    server = start_server(
        shared.backend, {"ATRIUM_S3_ENDPOINT_URL": proxy.url, "ATRIUM_S3_TIMEOUT": "1"}
    )
    try:
        data = secrets.token_hex(LARGE // 4).encode()
        with seeded(server, data) as (client, repo_id, head):
            with proxy.fault("hang"):
                for request in (
                    lambda: client.get(f"/{repo_id}/resolve/main/big.bin"),
                    lambda: commit(client, repo_id, "stalled.txt", b"stalled"),
                    lambda: upload_lfs(client, repo_id, secrets.token_hex(1000).encode()),
                ):
                    started = time.monotonic()
                    answer = request()
                    assert answer.status_code == 503, (answer.request.url, answer.text[:300])
                    assert time.monotonic() - started < 60
                    record(REFUSED)
            assert client.get(f"/api/models/{repo_id}").json()["sha"] == head

            assert commit(client, repo_id, "stalled.txt", b"stalled").status_code == 200
            got = client.get(f"/{repo_id}/resolve/main/big.bin")
            assert got.status_code == 200 and got.content == data
            assert client.get(f"/{repo_id}/resolve/main/stalled.txt").content == b"stalled"
    finally:
        server.stop()
