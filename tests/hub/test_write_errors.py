"""Bad input to the write API, sent by hand where the client would refuse it first: Hub-style
errors, and nothing changes (issue 4, Done when)."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete
from huggingface_hub.errors import BadRequestError, EntryNotFoundError, RevisionNotFoundError

from tests.hub.readkit import Owner, new_owner, no_xet  # noqa: F401 - no_xet is autouse
from tests.live import LiveServer


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


def new_repo(owner: Owner) -> str:
    repo_id = f"{owner.name}/e{secrets.token_hex(3)}"
    owner.api.create_repo(repo_id)
    return repo_id


def test_commit_to_unknown_revision_is_revision_not_found(owner: Owner) -> None:
    repo_id = new_repo(owner)
    with pytest.raises(RevisionNotFoundError):
        owner.api.upload_file(
            path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id, revision="nope"
        )


BAD_PATHS = ["../up.txt", "a/../../b.txt", "/abs.txt", ".git/config", "sub/.git/x", "nul\0.txt"]
BAD_PATHS += ["ctl\x07.txt", "a//b.txt", "bidi\u202e.txt"]


@pytest.mark.parametrize("path", BAD_PATHS)
def test_commit_with_a_bad_path_is_refused_and_changes_nothing(owner: Owner, path: str) -> None:
    """Sent by hand: the client refuses some of these before sending."""
    repo_id = new_repo(owner)
    head = owner.api.model_info(repo_id).sha
    lines = [
        {"key": "header", "value": {"summary": "bad"}},
        {"key": "file", "value": {"path": "fine.txt", "content": "Zm9v", "encoding": "base64"}},
        {"key": "file", "value": {"path": path, "content": "Zm9v", "encoding": "base64"}},
    ]
    response = httpx.post(
        f"{owner.server.url}/api/models/{repo_id}/commit/main",
        content="\n".join(json.dumps(line) for line in lines),
        headers={"authorization": f"Bearer {owner.token}", "content-type": "application/x-ndjson"},
    )
    assert response.status_code == 422 and response.json()["error"]  # the Hub's status
    assert owner.api.model_info(repo_id).sha == head


def test_malformed_commit_bodies_are_bad_requests(owner: Owner) -> None:
    repo_id = new_repo(owner)
    url = f"{owner.server.url}/api/models/{repo_id}/commit/main"
    headers = {"authorization": f"Bearer {owner.token}", "content-type": "application/x-ndjson"}
    bodies = [
        "",
        "not json",
        '{"key":"file","value":{"path":"a","content":"YQ=="}}',
        '{"key":"header","value":{}}\n{"key":"file","value":{"path":"a","content":"%%%"}}',
        '{"key":"header","value":{}}\n{"key":"lfsFile","value":{"path":"a","oid":"xyz"}}',
        '{"key":"header","value":{}}\n{"key":"teleport","value":{"path":"a"}}',
        '{"key":"header","value":{"parentCommit":"not-a-sha"}}',
    ]
    for body in bodies:
        response = httpx.post(url, content=body, headers=headers)
        assert response.status_code == 400, (body, response.text)
    with pytest.raises(BadRequestError):
        owner.api.create_branch(repo_id, branch="x..y")


def test_preupload_and_branch_from_unknown_revision_are_revision_not_found(owner: Owner) -> None:
    repo_id = new_repo(owner)
    with pytest.raises(RevisionNotFoundError):
        owner.api.create_branch(repo_id, branch="b", revision="nope")
    response = httpx.post(
        f"{owner.server.url}/api/models/{repo_id}/preupload/nope",
        json={"files": [{"path": "a.txt", "sample": "", "size": 1}]},
        headers={"authorization": f"Bearer {owner.token}"},
    )
    assert response.status_code == 404 and response.headers["x-error-code"] == "RevisionNotFound"
    assert [b.name for b in owner.api.list_repo_refs(repo_id).branches] == ["main"]


def test_preupload_decides_lfs_by_attributes_size_and_content(owner: Owner) -> None:
    repo_id = new_repo(owner)
    owner.api.upload_file(path_or_fileobj=b"*.log\n", path_in_repo=".gitignore", repo_id=repo_id)
    files = [
        {"path": "notes.txt", "sample": "aGVsbG8=", "size": 5},
        {"path": "w.safetensors", "sample": "aGVsbG8=", "size": 5},
        {"path": "nul.dat", "sample": "AAEC", "size": 3},
        {"path": "huge.txt", "sample": "aGVsbG8=", "size": 20 * 1024 * 1024},
        {"path": "run.log", "sample": "aGVsbG8=", "size": 5},
        {"path": ".gitignore", "sample": "Ki5sb2cK", "size": 6},
    ]
    response = httpx.post(
        f"{owner.server.url}/api/models/{repo_id}/preupload/main",
        json={"files": files},
        headers={"authorization": f"Bearer {owner.token}"},
    )
    answer = {f["path"]: f for f in response.json()["files"]}
    modes = {path: f["uploadMode"] for path, f in answer.items()}
    assert modes == {
        "notes.txt": "regular",
        "w.safetensors": "lfs",
        "nul.dat": "lfs",
        "huge.txt": "lfs",
        "run.log": "regular",
        ".gitignore": "regular",
    }
    assert [p for p, f in answer.items() if f["shouldIgnore"]] == ["run.log"]
    gitignore_sha1 = owner.api.get_paths_info(repo_id, [".gitignore"])[0].blob_id
    assert answer[".gitignore"]["oid"] == gitignore_sha1 and answer["notes.txt"]["oid"] is None


def test_refused_pull_request_commit_leaves_no_pr_ref(owner: Owner) -> None:
    repo_id = new_repo(owner)
    with pytest.raises(EntryNotFoundError):
        owner.api.create_commit(
            repo_id,
            [CommitOperationDelete("missing.txt")],
            commit_message="bad pr",
            create_pr=True,
        )
    refs = owner.api.list_repo_refs(repo_id, include_pull_requests=True)
    assert refs.pull_requests == []
    done = owner.api.create_commit(
        repo_id, [CommitOperationAdd("ok.txt", b"ok")], commit_message="pr", create_pr=True
    )
    assert done.pr_revision == "refs/pr/1"
