"""Per-namespace storage quotas: an upload past the limit is refused with 413 before anything
is stored, on every upload path, and leaves the repo as it was (app/quotas).

Each test works in a fresh user's namespace, whose limit it sets with `atrium quota set`, so
the shared server's other namespaces keep the default (unlimited).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationCopy, HfApi, constants
from huggingface_hub.errors import HfHubHTTPError

from tests.git.gitkit import Git, repo_url
from tests.hub.readkit import Owner, new_owner
from tests.live import LiveServer

pytestmark = pytest.mark.e2e
XET_MODES = [m.strip() for m in os.environ.get("ATRIUM_TEST_XET", "off,on").split(",")]
KB = 1000


@pytest.fixture
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


def set_quota(server: LiveServer, namespace: str, size: str) -> str:
    result = server.cli("quota", "set", namespace, size)
    assert result.returncode == 0, result.stderr
    return result.stdout


def new_repo(owner: Owner) -> str:
    repo_id = f"{owner.name}/q{secrets.token_hex(3)}"
    owner.api.create_repo(repo_id)
    return repo_id


def snapshot(api: HfApi, repo_id: str) -> tuple[list[str], list[str]]:
    files = sorted(api.list_repo_files(repo_id))
    return files, [c.commit_id for c in api.list_repo_commits(repo_id)]


@pytest.mark.parametrize("xet_mode", XET_MODES)
def test_upload_past_quota_is_refused_and_fits_once_raised(
    server: LiveServer, owner: Owner, xet_mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    off = xet_mode == "off"
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1" if off else "0")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", off)
    api, repo_id = owner.api, new_repo(owner)
    set_quota(server, owner.name, "1MB")
    held = secrets.token_bytes(600 * KB)
    api.upload_file(path_or_fileobj=held, path_in_repo="a.bin", repo_id=repo_id)
    # The same content again would pass 1 MB if it counted twice.
    api.upload_file(path_or_fileobj=held, path_in_repo="copy/a.bin", repo_id=repo_id)
    before = snapshot(api, repo_id)

    big = secrets.token_bytes(2000 * KB)
    with pytest.raises(Exception, match="Storage quota of namespace") as refused:
        api.upload_file(path_or_fileobj=big, path_in_repo="big.bin", repo_id=repo_id)
    # 600 kB of a.bin, held once, and the initial .gitattributes
    assert re.search(r"60\d kB used of 1 MB, this upload needs 2 MB", str(refused.value))
    assert snapshot(api, repo_id) == before
    # Preupload lets a file through when the namespace holds an object of its size; the
    # upload itself (LFS batch, or the Xet xorb, which hf_xet reports as a bare 413) refuses.
    twin = secrets.token_bytes(len(held))
    expected = "Storage quota of namespace" if off else "413"
    with pytest.raises(Exception, match=expected):
        api.upload_file(path_or_fileobj=twin, path_in_repo="twin.bin", repo_id=repo_id)
    assert snapshot(api, repo_id) == before

    assert re.search(r"60\d kB used of 5 MB", set_quota(server, owner.name, "5MB"))
    api.upload_file(path_or_fileobj=big, path_in_repo="big.bin", repo_id=repo_id)
    assert "big.bin" in api.list_repo_files(repo_id)
    assert "2.6 MB used of 5 MB" in server.cli("quota", "show", owner.name).stdout


@pytest.mark.skipif("on" not in XET_MODES, reason="ATRIUM_TEST_XET leaves Xet out")
def test_xet_shard_of_content_stored_elsewhere_is_refused(
    server: LiveServer, owner: Owner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Xorbs another namespace stored are not sent again; the shard that would give their
    file to this namespace is what the quota refuses."""
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "0")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    content = secrets.token_bytes(2000 * KB)
    source = new_owner(server)
    source.api.upload_file(path_or_fileobj=content, path_in_repo="w.bin", repo_id=new_repo(source))
    api, repo_id = owner.api, new_repo(owner)
    # An object of the same size lets the upload past preupload's size-only check.
    api.upload_file(
        path_or_fileobj=secrets.token_bytes(len(content)), path_in_repo="x.bin", repo_id=repo_id
    )
    set_quota(server, owner.name, "3MB")
    before = snapshot(api, repo_id)
    with pytest.raises(Exception, match="413"):
        api.upload_file(path_or_fileobj=content, path_in_repo="w.bin", repo_id=repo_id)
    assert snapshot(api, repo_id) == before
    assert "2 MB used of 3 MB" in server.cli("quota", "show", owner.name).stdout


def test_inline_commit_past_quota_is_refused_whole(server: LiveServer, owner: Owner) -> None:
    api, repo_id = owner.api, new_repo(owner)
    set_quota(server, owner.name, "1MB")
    before = snapshot(api, repo_id)
    operations = [
        CommitOperationAdd("notes.txt", b"fits\n"),
        CommitOperationAdd("big.txt", b"text " * (400 * KB)),  # 2 MB, sent inline (base64)
    ]
    with pytest.raises(HfHubHTTPError, match="Storage quota of namespace") as refused:
        api.create_commit(repo_id, operations, commit_message="too big")
    assert refused.value.response.status_code == 413
    assert snapshot(api, repo_id) == before
    api.create_commit(repo_id, operations[:1], commit_message="fits")
    assert "notes.txt" in api.list_repo_files(repo_id)


def test_cross_repo_copy_past_quota_is_refused(server: LiveServer, owner: Owner) -> None:
    source = new_owner(server)
    source_repo = new_repo(source)
    weights = secrets.token_bytes(2000 * KB)
    source.api.upload_file(path_or_fileobj=weights, path_in_repo="w.bin", repo_id=source_repo)
    api, repo_id = owner.api, new_repo(owner)
    set_quota(server, owner.name, "1MB")
    before = snapshot(api, repo_id)
    copy = CommitOperationCopy("w.bin", "w.bin", src_repo_id=source_repo, src_repo_type="model")
    with pytest.raises(HfHubHTTPError, match="Storage quota of namespace"):
        api.create_commit(repo_id, [copy], commit_message="copy 2 MB")
    assert snapshot(api, repo_id) == before


def test_git_push_past_quota_is_refused(server: LiveServer, owner: Owner, tmp_path: Path) -> None:
    api, repo_id = owner.api, new_repo(owner)
    set_quota(server, owner.name, "1MB")
    git = Git(tmp_path / "home")
    work = git.clone(repo_url(server, repo_id, owner.token), tmp_path / "w")
    before = snapshot(api, repo_id)
    git.commit_files(work, {"big.txt": "blob " * (400 * KB)}, "a 2 MB git blob")
    pushed = git.run("push", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0
    assert "Storage quota of namespace" in pushed.stderr, pushed.stderr
    assert snapshot(api, repo_id) == before

    set_quota(server, owner.name, "3MB")
    git.run("push", "origin", "main", cwd=work)
    assert "big.txt" in api.list_repo_files(repo_id)


@pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed")
def test_git_lfs_push_past_quota_is_refused(
    server: LiveServer, owner: Owner, tmp_path: Path
) -> None:
    api, repo_id = owner.api, new_repo(owner)
    set_quota(server, owner.name, "1MB")
    git = Git(tmp_path / "home")
    git.run("lfs", "install", "--skip-repo")
    work = git.clone(repo_url(server, repo_id, owner.token), tmp_path / "w")
    git.run("lfs", "track", "*.bin", cwd=work)
    before = snapshot(api, repo_id)
    git.commit_files(work, {"weights.bin": secrets.token_bytes(2000 * KB)}, "2 MB in LFS")
    pushed = git.run("push", "origin", "main", cwd=work, check=False)
    assert pushed.returncode != 0
    assert "Storage quota of namespace" in pushed.stderr, pushed.stderr
    assert snapshot(api, repo_id) == before


def test_quota_api_for_admins_and_members(server: LiveServer, owner: Owner) -> None:
    _, admin_token = server.new_user(admin=True)
    path = f"/api/admin/quotas/{owner.name}"
    with httpx.Client(base_url=server.url) as http:
        mine = {"Authorization": f"Bearer {owner.token}"}
        refused = http.put(path, json={"limit": "1GB"}, headers=mine)
        assert refused.status_code == 403
        admin = {"Authorization": f"Bearer {admin_token}"}
        answer = http.put(path, json={"limit": "2GB"}, headers=admin)
        assert answer.status_code == 200, answer.text
        assert answer.json()["limit"] == 2 * 10**9
        shown = http.get(f"/api/quotas/{owner.name}", headers=mine).json()
        assert shown == {
            "namespace": owner.name,
            "used": 0,
            "usedLfs": 0,
            "usedGit": 0,
            "limit": 2 * 10**9,
        }
        stranger = server.new_user()[1]
        other = http.get(
            f"/api/quotas/{owner.name}", headers={"Authorization": f"Bearer {stranger}"}
        )
        assert other.status_code == 403
        assert http.put(path, json={"limit": None}, headers=admin).json()["limit"] is None
