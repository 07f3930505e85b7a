"""The server logs one JSON object per line, with request id, user and repo, and no query
strings (signed transfer URLs carry their signatures there)."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import httpx

from tests.git.gitkit import Git, repo_url
from tests.hub.readkit import make_repo, new_owner
from tests.inference import kit
from tests.inference.kit import inference_server
from tests.live import Backend, LiveServer


def log_line(server: LiveServer, request_id: str, timeout: float = 10) -> dict[str, Any]:
    """The access log line of a request, waiting for the server to write it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for text in server.log_path.read_text(errors="replace").splitlines():
            if request_id in text:
                try:
                    return dict(json.loads(text))
                except json.JSONDecodeError:
                    break  # the server is still writing this line: read the file again
        time.sleep(0.1)
    raise AssertionError(f"no log line for request {request_id}")


def test_access_log_is_json_with_request_id_user_and_repo(server: LiveServer) -> None:
    owner = new_owner(server)
    repo, _ = make_repo(owner, "logged", {"a.txt": b"a"})
    request_id = f"ops-{secrets.token_hex(6)}"
    response = httpx.get(
        f"{server.url}/{repo.repo_id}.git/info/refs",
        params={"service": "git-upload-pack"},
        headers={"x-request-id": request_id},
        auth=(owner.name, owner.token),
        timeout=10,
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
    line = log_line(server, request_id)
    assert line["logger"] == "atrium.access"
    assert line["status"] == 200
    assert line["user"] == owner.name
    assert line["repo"] == repo.repo_id
    assert line["path"] == f"/{repo.repo_id}.git/info/refs"


def test_hub_api_lines_name_the_repo(server: LiveServer) -> None:
    owner = new_owner(server)
    repo, _ = make_repo(owner, "named", {"a.txt": b"a"})
    request_id = f"ops-{secrets.token_hex(6)}"
    httpx.get(
        f"{server.url}/api/models/{repo.repo_id}",
        headers={"x-request-id": request_id, "authorization": f"Bearer {owner.token}"},
        timeout=10,
    )
    line = log_line(server, request_id)
    assert (line["repo"], line["user"], line["status"]) == (repo.repo_id, owner.name, 200)


def test_query_strings_are_not_logged(server: LiveServer) -> None:
    secret = secrets.token_hex(12)
    request_id = f"ops-{secrets.token_hex(6)}"
    httpx.get(f"{server.url}/health", params={"sig": secret}, headers={"x-request-id": request_id})
    line = log_line(server, request_id)
    assert line["path"] == "/health"
    assert secret not in server.log_path.read_text(errors="replace")


def test_every_stderr_line_is_json_through_a_model_load_git_and_shutdown(
    backend: Backend, tmp_path: Path
) -> None:
    """A server of its own: it serves git, loads a model onto its worker and answers it, then
    stops; everything it wrote to stderr, start-up banner and the worker's output included,
    is one JSON object per line (no progress bars, no leaked-semaphore warning)."""
    live = inference_server(backend)
    try:
        owner = new_owner(live)
        files, lfs = kit.model_files("text-classification")
        repo, _ = make_repo(owner, "logged-model", files, lfs)
        clone = Git(tmp_path / "git").clone(
            repo_url(live, repo.repo_id, owner.token), tmp_path / "c"
        )
        assert (clone / "config.json").exists()
        answer = httpx.post(
            f"{live.url}/models/{repo.repo_id}",
            json={"inputs": "a great movie"},
            headers={"Authorization": f"Bearer {owner.token}"},
            timeout=120,
        )
        assert answer.status_code == 200, answer.text
    finally:
        live.stop()
    lines = [line for line in live.log_path.read_text(errors="replace").splitlines() if line]
    assert any("serving on" in line for line in lines)
    for line in lines:
        assert isinstance(json.loads(line), dict), line
