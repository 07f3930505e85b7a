"""Request size limits (issue 10 §5): a body over ATRIUM_MAX_REQUEST_BODY is refused with 413
whether it declares its length or streams it chunked, on JSON, form and NDJSON routes, and
the server keeps answering afterwards; nothing of a refused commit becomes visible."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.live import Backend, LiveServer, start_server
from tests.reliability.figures import REFUSED, record

LIMIT = 256 * 1024  # small, so that the test sends little


@pytest.fixture(scope="module")
def small_server(backend: Backend) -> Iterator[LiveServer]:
    live = start_server(backend, {"ATRIUM_MAX_REQUEST_BODY": str(LIMIT)})
    yield live
    live.stop()


def chunked(data: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """A body without Content-Length: httpx sends it with Transfer-Encoding: chunked."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def oversized_bodies(repo_id: str) -> list[tuple[str, str, dict[str, str], bytes]]:
    big = b"x" * (LIMIT + 1)
    header = json.dumps({"key": "header", "value": {"summary": "too big"}}).encode()
    line = {"key": "file", "value": {"path": "big.txt", "content": "x" * (LIMIT + 1)}}
    ndjson = header + b"\n" + json.dumps(line).encode()
    json_body = json.dumps({"name": "x" * (LIMIT + 1)}).encode()
    return [
        ("POST", "/api/repos/create", {"Content-Type": "application/json"}, json_body),
        (
            "POST",
            f"/api/models/{repo_id}/commit/main",
            {"Content-Type": "application/x-ndjson"},
            ndjson,
        ),
        (
            "POST",
            f"/api/models/{repo_id}/paths-info/main",
            {"Content-Type": "application/x-www-form-urlencoded"},
            b"paths=" + big,
        ),
        (
            "POST",
            f"/api/models/{repo_id}/preupload/main",
            {"Content-Type": "application/json"},
            json_body,
        ),
        ("POST", "/api/validate-yaml", {"Content-Type": "application/json"}, json_body),
        (
            "POST",
            f"/{repo_id}.git/info/lfs/objects/batch",
            {"Content-Type": "application/vnd.git-lfs+json"},
            json_body,
        ),
    ]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_bodies_over_the_limit_are_refused_with_413(small_server: LiveServer, framing: str) -> None:
    name, token = small_server.new_user()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=small_server.url, timeout=60, headers=auth) as client:
        created = client.post("/api/repos/create", json={"name": "limits", "type": "model"})
        assert created.status_code == 200, created.text
        repo_id = f"{name}/limits"
        head = client.get(f"/api/models/{repo_id}").json()["sha"]
        for method, path, headers, body in oversized_bodies(repo_id):
            content = body if framing == "content-length" else chunked(body)
            response = client.request(method, path, headers=headers, content=content)
            assert response.status_code == 413, (path, response.status_code, response.text[:200])
            assert "limit" in response.json()["error"]
            record(REFUSED)
        assert client.get(f"/api/models/{repo_id}").json()["sha"] == head
        assert client.get("/health").status_code == 200
