"""`list_lfs_files` and `permanently_delete_lfs_files` (issue 21): the repo's large objects with
a path and a ref each; deleting some rewrites every ref's history without them — authors,
dates and messages kept, the old commits forgotten — while other repos holding the same
content keep it, and the store stays whole."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from app.repos.fsck import fsck
from tests.git.gitkit import Git, repo_url
from tests.live import LiveServer


@pytest.mark.parametrize("xet", [True, False], ids=["xet", "lfs"])
def test_list_then_delete_large_files_for_good(
    server: LiveServer,
    tmp_path: Path,
    hf_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    xet: bool,
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", not xet)
    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo_id = f"{owner}/big-{secrets.token_hex(2)}"
    hub.create_repo(repo_id)
    secret = secrets.token_bytes(64)  # pushed by mistake
    hub.upload_file(path_or_fileobj=secret, path_in_repo="leak.bin", repo_id=repo_id)
    hub.upload_file(path_or_fileobj=b"TXT content", path_in_repo="notes.txt", repo_id=repo_id)
    hub.upload_file(path_or_fileobj=b"LFS 2", path_in_repo="w/weights.bin", repo_id=repo_id)
    hub.create_branch(repo_id, branch="dev")
    hub.upload_file(
        path_or_fileobj=b"dev LFS", path_in_repo="dev.bin", repo_id=repo_id, revision="dev"
    )
    hub.delete_file("leak.bin", repo_id)  # deleted from main, still in its history and on dev
    hub.upload_file(path_or_fileobj=b"old", path_in_repo="old.bin", repo_id=repo_id)
    hub.delete_file("old.bin", repo_id)  # in the history only
    before = hub.list_repo_commits(repo_id)
    leaked_at = before[-2].commit_id  # the commit that added it
    assert before[-2].title == "Upload leak.bin with huggingface_hub"

    # Somebody else holds the same content in a repo of their own.
    other, other_token = server.new_user()
    elsewhere = HfApi(endpoint=server.url, token=other_token)
    copy_id = f"{other}/same-{secrets.token_hex(2)}"
    elsewhere.create_repo(copy_id)
    elsewhere.upload_file(path_or_fileobj=secret, path_in_repo="same.bin", repo_id=copy_id)

    files = {f.filename: f for f in hub.list_lfs_files(repo_id)}
    assert set(files) == {"leak.bin", "w/weights.bin", "dev.bin", "old.bin"}
    assert files["w/weights.bin"].ref == "main" and files["dev.bin"].ref == "dev"
    assert files["leak.bin"].ref == "dev" and files["old.bin"].ref is None
    assert files["leak.bin"].size == 64 and files["leak.bin"].pushed_at is not None
    # Only those who may write the repo see the list.
    with pytest.raises(HfHubHTTPError) as refused:
        list(elsewhere.list_lfs_files(repo_id))
    assert refused.value.response.status_code == 403

    hub.permanently_delete_lfs_files(repo_id, [files["leak.bin"], files["w/weights.bin"]])

    assert {f.filename for f in hub.list_lfs_files(repo_id)} == {"dev.bin", "old.bin"}
    assert set(hub.list_repo_files(repo_id)) == {".gitattributes", "notes.txt"}
    with pytest.raises(EntryNotFoundError):
        hub.hf_hub_download(repo_id, "w/weights.bin", cache_dir=tmp_path / "c")
    after = hub.list_repo_commits(repo_id)
    assert [c.title for c in after] == [c.title for c in before]
    assert [c.authors for c in after] == [c.authors for c in before]
    assert after[-1].commit_id == before[-1].commit_id  # untouched commits keep their ids
    # The old commits that showed the objects no longer resolve in this repo.
    with pytest.raises(RevisionNotFoundError):
        hub.hf_hub_download(repo_id, "leak.bin", revision=leaked_at, cache_dir=tmp_path / "c")
    leak = httpx.get(f"{server.url}/{repo_id}/resolve/{leaked_at}/leak.bin")
    assert leak.status_code == 404
    # The branch was rewritten too and still has its own file.
    dev = hub.hf_hub_download(repo_id, "dev.bin", revision="dev", cache_dir=tmp_path / "c")
    assert Path(dev).read_bytes() == b"dev LFS"
    assert set(hub.list_repo_files(repo_id, revision="dev")) == {
        ".gitattributes",
        "notes.txt",
        "dev.bin",
    }
    # The other repo keeps its copy; git clones the new history; the store is whole.
    same = elsewhere.hf_hub_download(copy_id, "same.bin", cache_dir=tmp_path / "o")
    assert Path(same).read_bytes() == secret
    git = Git(tmp_path / "git")
    clone = git.clone(repo_url(server, repo_id, token), tmp_path / "clone", "--no-checkout")
    assert git.out("rev-parse", "HEAD", cwd=clone).strip() == after[0].commit_id
    git.run("fsck", "--strict", cwd=clone)
    app = server.app()
    report = fsck(app.state.sessionmaker, app.state.blobs)
    assert report.ok, report.problems


def test_deleting_needs_write_access_and_rewritten_history(server: LiveServer) -> None:
    owner, token = server.new_user()
    _, other_token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo_id = f"{owner}/keep-{secrets.token_hex(2)}"
    hub.create_repo(repo_id, private=True)
    hub.upload_file(path_or_fileobj=b"weights", path_in_repo="w.bin", repo_id=repo_id)
    (item,) = hub.list_lfs_files(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=server.url, token=other_token).permanently_delete_lfs_files(repo_id, [item])
    with pytest.raises(HfHubHTTPError) as kept:
        hub.permanently_delete_lfs_files(repo_id, [item], rewrite_history=False)
    assert kept.value.response.status_code == 400
    assert "rewriteHistory" in kept.value.response.text
    bad = httpx.post(
        f"{server.url}/api/models/{repo_id}/lfs-files/batch",
        headers={"Authorization": f"Bearer {token}"},
        json={"deletions": {"sha": ["../../etc"]}},
    )
    assert bad.status_code in (400, 422)
    assert hub.list_repo_files(repo_id) == [".gitattributes", "w.bin"]
