"""`HfApi.duplicate_repo` (issue 21): a copy with the source's whole history, branches and tags,
whose large files download at once (through Xet and through LFS) although nothing was copied;
only what the caller may read can be copied, only into a namespace they may write."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.git.gitkit import Git, repo_url
from tests.live import LiveServer

WEIGHTS = os.urandom(300_000)  # stored as a large file (Xet by default)


def test_a_duplicate_has_the_history_refs_and_files(
    server: LiveServer, tmp_path: Path, hf_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    source = f"{owner}/src-{secrets.token_hex(2)}"
    hub.create_repo(source, private=True)
    hub.upload_file(path_or_fileobj=WEIGHTS, path_in_repo="model.safetensors", repo_id=source)
    hub.upload_file(path_or_fileobj=b"# Card\n", path_in_repo="README.md", repo_id=source)
    hub.create_branch(source, branch="dev")
    hub.upload_file(path_or_fileobj=b"dev", path_in_repo="dev.txt", repo_id=source, revision="dev")
    hub.create_tag(source, tag="v1")

    copy = hub.duplicate_repo(source, f"{owner}/copy")
    assert copy.repo_id == f"{owner}/copy"
    assert hub.model_info(copy.repo_id).private  # the source's visibility by default
    assert [c.commit_id for c in hub.list_repo_commits(copy.repo_id)] == [
        c.commit_id for c in hub.list_repo_commits(source)
    ]
    refs = hub.list_repo_refs(copy.repo_id, include_pull_requests=True)
    assert {b.name for b in refs.branches} == {"main", "dev"}
    assert [t.name for t in refs.tags] == ["v1"]
    assert refs.pull_requests == []
    # The large file downloads through Xet and through LFS, the other files as well.
    path = hub.hf_hub_download(copy.repo_id, "model.safetensors", cache_dir=tmp_path / "xet")
    assert Path(path).read_bytes() == WEIGHTS
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    path = hub.hf_hub_download(copy.repo_id, "model.safetensors", cache_dir=tmp_path / "lfs")
    assert Path(path).read_bytes() == WEIGHTS
    path = hub.hf_hub_download(copy.repo_id, "dev.txt", revision="dev", cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == b"dev"
    clone = Git(tmp_path / "git").clone(repo_url(server, copy.repo_id, token), tmp_path / "clone")
    assert (clone / "README.md").read_bytes() == b"# Card\n"

    # The two repos go their own ways from here.
    hub.upload_file(path_or_fileobj=b"new", path_in_repo="new.txt", repo_id=copy.repo_id)
    assert "new.txt" not in hub.list_repo_files(source)
    # A taken name is a 409, which exist_ok tolerates.
    with pytest.raises(HfHubHTTPError) as taken:
        hub.duplicate_repo(source, copy.repo_id)
    assert taken.value.response.status_code == 409
    assert hub.duplicate_repo(source, copy.repo_id, exist_ok=True).repo_id == copy.repo_id


def test_only_a_readable_repo_is_copied_only_where_the_caller_writes(
    server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    owner, token = server.new_user()
    other, other_token = server.new_user()
    hub, outsider = (HfApi(endpoint=server.url, token=t) for t in (token, other_token))
    source = f"{owner}/secret-{secrets.token_hex(2)}"
    hub.create_repo(source, private=True)
    hub.upload_file(path_or_fileobj=WEIGHTS, path_in_repo="w.bin", repo_id=source)

    # A private repo is not found by those who may not read it.
    with pytest.raises(RepositoryNotFoundError):
        outsider.duplicate_repo(source)
    assert not outsider.repo_exists(f"{other}/{source.split('/')[1]}")

    # Public, anyone signed in copies it into their own namespace (by default the same name),
    # public or private as they ask; never into somebody else's.
    hub.update_repo_settings(source, private=False)
    mine = outsider.duplicate_repo(source, private=True)
    assert mine.repo_id == f"{other}/{source.split('/')[1]}"
    assert outsider.model_info(mine.repo_id).private
    path = outsider.hf_hub_download(mine.repo_id, "w.bin", cache_dir=tmp_path / "c")
    assert Path(path).read_bytes() == WEIGHTS
    with pytest.raises(HfHubHTTPError) as refused:
        outsider.duplicate_repo(source, f"{owner}/planted")
    assert refused.value.response.status_code == 403
    assert not hub.repo_exists(f"{owner}/planted")
    with pytest.raises(HfHubHTTPError) as anonymous:
        HfApi(endpoint=server.url, token=False).duplicate_repo(source, f"{other}/anon")
    assert anonymous.value.response.status_code == 401
