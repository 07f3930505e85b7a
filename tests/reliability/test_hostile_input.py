"""Hostile input gets a clear 4xx in bounded time, never a 500 (issue 16 §2, §3): repo ids
whose `/` came encoded, YAML that nests, recurses or expands without end (in validate-yaml and
in a commit), NUL in ref names, and bodies past a route's own limit. An error no handler maps
still leaves an access line with status 500 and its request id."""

from __future__ import annotations

import json
import logging
import secrets
import time

import httpx
import pytest
from huggingface_hub import HfApi
from starlette.testclient import TestClient

from app.cards.metadata import MAX_YAML_DEPTH
from tests.live import LiveServer

ENCODED_SLASH = [
    "/foo%2Fbar",
    "/datasets/foo%2Fbar",
    "/spaces/foo%2Fbar",
    "/api/models/foo%2Fbar",
    "/api/datasets/foo%2Fbar/tree/main",
    "/api/models/foo%2Fbar/revision/main",
    "/foo%2Fbar/resolve/main/config.json",
    "/datasets/foo%2Fbar/resolve/main/data.csv",
]
LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 9) + "]\n"
    for i in range(8)
)
HOSTILE_YAML = {
    "recursive alias": ("a: &a [*a]\n", "contains itself"),
    "5,000 nested brackets": ("a: " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    "billion laughs": (LAUGHS, "aliases are expanded"),
    "too long": ("a: " + "x" * 300_000 + "\n", "larger than"),
}
BOUND_S = 5  # far above what each refusal takes, far below what the unbounded work took


@pytest.mark.parametrize("path", ENCODED_SLASH)
def test_a_repo_id_with_an_encoded_slash_is_not_found(server: LiveServer, path: str) -> None:
    answer = httpx.get(f"{server.url}{path}", timeout=10)
    assert answer.status_code == 404, answer.text
    if path.startswith("/api/"):
        assert answer.headers["X-Error-Code"] == "RepoNotFound"


@pytest.mark.parametrize("case", HOSTILE_YAML, ids=list(HOSTILE_YAML))
def test_hostile_yaml_is_refused_by_validate_yaml_quickly(server: LiveServer, case: str) -> None:
    text, reason = HOSTILE_YAML[case]
    started = time.monotonic()
    answer = httpx.post(
        f"{server.url}/api/validate-yaml",
        json={"content": f"---\n{text}---\n# card\n", "repoType": "model"},
        timeout=30,
    )
    assert time.monotonic() - started < BOUND_S
    assert answer.status_code == 400
    assert reason in answer.json()["errors"][0]["message"]


def test_nesting_within_the_bound_is_fine(server: LiveServer) -> None:
    depth = MAX_YAML_DEPTH - 2
    card = f"---\na: {'[' * depth}1{']' * depth}\nlicense: mit\n---\n"
    answer = httpx.post(f"{server.url}/api/validate-yaml", json={"content": card}, timeout=10)
    assert answer.status_code == 200 and answer.json()["errors"] == []


@pytest.mark.parametrize("case", HOSTILE_YAML, ids=list(HOSTILE_YAML))
def test_a_commit_of_a_hostile_card_lands_without_metadata_and_pages_stay_fast(
    server: LiveServer, case: str
) -> None:
    """The commit API itself never refuses a card (as on the Hub): it stores no metadata."""
    name, token = server.new_user()
    repo_id = f"{name}/y{secrets.token_hex(3)}"
    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo_id)
    text, _ = HOSTILE_YAML[case]
    readme = f"---\n{text}---\n# card\n"
    body = "\n".join(
        json.dumps(line)
        for line in (
            {"key": "header", "value": {"summary": "hostile card"}},
            {
                "key": "file",
                "value": {"path": "README.md", "content": readme, "encoding": "utf-8"},
            },
        )
    )
    started = time.monotonic()
    answer = httpx.post(
        f"{server.url}/api/models/{repo_id}/commit/main",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        timeout=30,
    )
    assert time.monotonic() - started < BOUND_S
    assert answer.status_code == 200, answer.text
    assert api.model_info(repo_id).card_data is None
    started = time.monotonic()
    assert httpx.get(f"{server.url}/", timeout=30).status_code == 200
    assert httpx.get(f"{server.url}/{repo_id}", timeout=30).status_code == 200
    assert time.monotonic() - started < BOUND_S


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/models/{repo}/branch/a%00b"),
        ("GET", "/{repo}/resolve/a%00b/README.md"),
        ("GET", "/api/models/{repo}/revision/a%00b"),
        ("GET", "/api/models/{repo}/tree/main/a%00b"),
    ],
)
def test_a_nul_in_a_ref_or_path_is_a_4xx(server: LiveServer, method: str, path: str) -> None:
    name, token = server.new_user()
    repo_id = f"{name}/n{secrets.token_hex(3)}"
    HfApi(endpoint=server.url, token=token).create_repo(repo_id)
    answer = httpx.request(
        method,
        server.url + path.format(repo=repo_id),
        headers={"Authorization": f"Bearer {token}"},
        json={},
        timeout=10,
    )
    assert 400 <= answer.status_code < 500, answer.text


def test_validate_yaml_refuses_a_body_past_its_limit_before_reading_it(server: LiveServer) -> None:
    big = b'{"content": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    answer = httpx.post(f"{server.url}/api/validate-yaml", content=big, timeout=30)
    assert answer.status_code == 413


def test_an_unmapped_error_is_a_500_with_its_request_id_and_access_line(
    server: LiveServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = server.app()

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test-only/boom", boom)
    app.router.routes.insert(0, app.router.routes.pop())  # before the pages' catch-all routes
    client = TestClient(app, raise_server_exceptions=False)  # no lifespan: the app is shared
    with caplog.at_level(logging.INFO, logger="atrium.access"):
        answer = client.get("/test-only/boom", headers={"X-Request-Id": "boom-1"})
    assert answer.status_code == 500
    assert answer.headers["X-Request-Id"] == "boom-1"
    assert "Traceback" not in answer.text and "a bug" not in answer.text
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "atrium.access"]
    assert {"request_id": "boom-1", "status": 500}.items() <= lines[-1].items()


def test_paths_info_checks_the_repo_before_the_body_and_bounds_it(server: LiveServer) -> None:
    name, token = server.new_user()
    repo_id = f"{name}/p{secrets.token_hex(3)}"
    HfApi(endpoint=server.url, token=token).create_repo(repo_id)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    missing = httpx.post(
        f"{server.url}/api/models/{name}/missing/paths-info/main",
        content=b"paths=" + b"a" * (2 * 1024 * 1024),
        headers=form,
        timeout=30,
    )
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "RepoNotFound"
    huge = httpx.post(
        f"{server.url}/api/models/{repo_id}/paths-info/main",
        content=b"paths=" + b"a" * (17 * 1024 * 1024),
        headers=form,
        timeout=30,
    )
    assert huge.status_code == 413
    fine = httpx.post(
        f"{server.url}/api/models/{repo_id}/paths-info/main",
        content=b"paths=.gitattributes&paths=nope",
        headers=form,
        timeout=30,
    )
    assert [e["path"] for e in fine.json()] == [".gitattributes"]


def test_a_commit_checks_the_repo_first_and_reads_lines_in_linear_time(server: LiveServer) -> None:
    name, token = server.new_user()
    repo_id = f"{name}/c{secrets.token_hex(3)}"
    HfApi(endpoint=server.url, token=token).create_repo(repo_id)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
    operations = b'{"key": "header", "value": {"summary": "x"}}\n' + b"x" * (2 * 1024 * 1024)
    missing = httpx.post(
        f"{server.url}/api/models/{name}/missing/commit/main",
        content=operations,
        headers=headers,
        timeout=30,
    )
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "RepoNotFound"
    started = time.monotonic()
    one_line = httpx.post(
        f"{server.url}/api/models/{repo_id}/commit/main",
        content=b'{"key": "header", "value": {"summary": "' + b"x" * (8 * 1024 * 1024),
        headers=headers,
        timeout=30,
    )
    assert one_line.status_code == 413 and "header line" in one_line.json()["error"]
    assert time.monotonic() - started < BOUND_S
