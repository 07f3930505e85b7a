"""git-lfs over Atrium: `git lfs track` + push uploads through the batch API, clone smudges."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download

from tests.git.gitkit import Git, repo_url
from tests.hub.readkit import Owner, commit, make_repo, new_owner, no_xet  # noqa: F401
from tests.live import LiveServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("git-lfs") is None, reason="git-lfs is not installed"),
]


@pytest.fixture
def git(tmp_path: Path) -> Git:
    lfs_git = Git(tmp_path / "git-home")
    lfs_git.run("lfs", "install", "--skip-repo")
    return lfs_git


@pytest.fixture
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


def test_lfs_push_then_api_download_and_clone_smudge(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path, hf_home: Path
) -> None:
    repo, _ = make_repo(owner, "lfs-push")
    url = repo_url(server, repo.repo_id, owner.token)
    work = git.clone(url, tmp_path / "w")
    git.run("lfs", "track", "*.bin", cwd=work)
    weights = secrets.token_bytes(300_000)
    local = git.commit_files(work, {"weights.bin": weights, "notes.txt": "small"}, "LFS weights")
    git.run("push", cwd=work)  # the pre-push hook uploads first, or the push is refused

    info = owner.api.model_info(repo.repo_id, files_metadata=True)
    assert info.sha == local
    [sibling] = [s for s in info.siblings or [] if s.rfilename == "weights.bin"]
    assert sibling.lfs is not None and sibling.size == len(weights)
    path = hf_hub_download(repo.repo_id, "weights.bin", endpoint=server.url, token=owner.token)
    assert Path(path).read_bytes() == weights

    fresh = git.clone(repo_url(server, repo.repo_id), tmp_path / "fresh")  # anonymous, smudged
    assert (fresh / "weights.bin").read_bytes() == weights
    assert git.out("lfs", "ls-files", cwd=fresh).endswith("weights.bin")


def test_clone_smudges_lfs_files_committed_through_the_api(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    model = secrets.token_bytes(150_000)
    repo, _ = make_repo(owner, "lfs-api", {"config.json": b"{}"}, {"model.safetensors": model})
    work = git.clone(repo_url(server, repo.repo_id, owner.token, suffix=".git"), tmp_path / "w")
    assert (work / "model.safetensors").read_bytes() == model
    assert (work / "config.json").read_bytes() == b"{}"


def test_private_repo_lfs_needs_the_token(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    secret = secrets.token_bytes(50_000)
    repo, _ = make_repo(owner, "lfs-private", lfs={"secret.bin": secret}, private=True)
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    assert (work / "secret.bin").read_bytes() == secret
    _, stranger = server.new_user()
    refused = git.run(
        "clone", repo_url(server, repo.repo_id, stranger), str(tmp_path / "s"), check=False
    )
    assert refused.returncode != 0 and "not found" in refused.stderr
