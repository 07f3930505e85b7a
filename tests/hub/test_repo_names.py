"""Repo names as the Hub treats them (issue 21): a moved repo's old name redirects (API,
downloads, pages, git) until a repo takes it again, a private one's only for those who may read
it; ids resolve whatever their case; ids without a namespace and unknown API paths are 404s of
their own; the Hub's messages for taken names."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.git.gitkit import Git, repo_url
from tests.live import LiveServer


def test_a_moved_repo_redirects_from_its_old_name(
    server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    owner, token = server.new_user()
    _, other_token = server.new_user()
    old, new = f"{owner}/before-{secrets.token_hex(2)}", f"{owner}/after-{secrets.token_hex(2)}"
    hub = HfApi(endpoint=server.url, token=token)
    hub.create_repo(old, private=True)
    hub.upload_file(path_or_fileobj=b"content", path_in_repo="file.txt", repo_id=old)
    hub.move_repo(old, new)

    # The old name answers 307 to the new one; the client follows it.
    auth = {"Authorization": f"Bearer {token}"}
    moved = httpx.get(f"{server.url}/api/models/{old}", headers=auth)
    assert moved.status_code == 307
    assert moved.headers["location"] == f"/api/models/{new}"  # relative, as the Hub sends it
    path = hub.hf_hub_download(old, "file.txt", cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == b"content"
    git = Git(tmp_path / "git")
    clone = git.clone(repo_url(server, old, token), tmp_path / "clone")
    assert (clone / "file.txt").read_bytes() == b"content"
    # A private repo's new name is told only to those who may read it.
    hidden = httpx.get(
        f"{server.url}/api/models/{old}", headers={"Authorization": f"Bearer {other_token}"}
    )
    assert hidden.status_code == 404 and hidden.headers["x-error-code"] == "RepoNotFound"
    assert "after" not in hidden.text
    # Public, its pages redirect too (pages take no tokens: the browser's session reads).
    hub.update_repo_settings(new, private=False)
    page = httpx.get(f"{server.url}/{old}/tree/main")
    assert page.status_code == 307 and page.headers["location"].endswith(f"/{new}/tree/main")
    # Once a repo takes the old name, it is that repo's.
    hub.create_repo(old)
    assert hub.model_info(old).id == old
    assert hub.list_repo_files(old) == [".gitattributes"]


def test_ids_case_and_unknown_paths(server: LiveServer) -> None:
    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    name = f"Mixed-{secrets.token_hex(2)}"
    hub.create_repo(f"{owner}/{name}")
    lower = f"{owner}/{name.lower()}"
    hub.create_commit(lower, [CommitOperationAdd("a.txt", b"a")], commit_message="lower-cased id")
    assert hub.model_info(lower).id == f"{owner}/{name}"
    with pytest.raises(HfHubHTTPError) as taken:
        hub.create_repo(f"{owner}/{name.upper()}")
    assert taken.value.response.status_code == 409
    # No namespace: RepoNotFound, so that repo_exists and file_exists say False.
    assert not hub.repo_exists("no-namespace-here")
    assert not hub.file_exists("no-namespace-here", "config.json")
    bare = httpx.get(f"{server.url}/api/models/no-namespace-here")
    assert bare.status_code == 404 and bare.headers["x-error-code"] == "RepoNotFound"
    for method in ("GET", "POST", "DELETE"):
        unknown = httpx.request(method, f"{server.url}/api/no-such-thing/here")
        assert unknown.status_code == 404, method
        assert "x-error-code" not in unknown.headers and "No API route" in unknown.json()["error"]
    # The Hub's words for taken names.
    other = f"{owner}/other-{secrets.token_hex(2)}"
    hub.create_repo(other)
    with pytest.raises(HfHubHTTPError, match=r"A model repository called .* already exists"):
        hub.move_repo(other, f"{owner}/{name}")
    hub.create_branch(other, branch="cool")
    with pytest.raises(HfHubHTTPError, match=r"Reference refs/heads/cool already exists"):
        hub.create_branch(other, branch="cool")
