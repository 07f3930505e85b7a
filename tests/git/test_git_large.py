"""A repo with 2,000 files and some history, pushed and cloned with git (timings printed)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from tests.git.gitkit import Git, repo_url
from tests.hub.readkit import commit, make_repo, new_owner
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

FILES = 2000


def test_clone_of_a_2000_file_repo_with_history(
    server: LiveServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    owner = new_owner(server)
    repo, _ = make_repo(owner, "big")
    git = Git(tmp_path / "git-home")
    url = repo_url(server, repo.repo_id, owner.token)
    work = git.clone(url, tmp_path / "src")
    files = {f"shard{n % 25:02d}/part{n:04d}.txt": f"row {n}\n" * 8 for n in range(FILES)}
    git.commit_files(work, files, "2,000 files")
    for step in range(2):
        edits = {
            f"shard{step:02d}/part{n:04d}.txt": f"edit {step}\n" for n in range(step, FILES, 25)
        }
        git.commit_files(work, edits, f"edit {step}")
    started = time.perf_counter()
    git.run("push", cwd=work)
    pushed = time.perf_counter() - started

    older = cached_replies(server)
    started = time.perf_counter()
    fresh = git.clone(url, tmp_path / "fresh")
    cloned = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\n[{server.backend.name}] push {pushed:.2f} s, clone {cloned:.2f} s ({FILES} files)"
        )

    assert git.out("rev-parse", "HEAD", cwd=fresh) == git.out("rev-parse", "HEAD", cwd=work)
    assert git.out("rev-list", "--count", "HEAD", cwd=fresh) == "4"
    assert len(git.out("ls-files", cwd=fresh).splitlines()) == FILES + 1  # + .gitattributes
    git.run("fsck", "--strict", cwd=fresh)
    info = owner.api.model_info(repo.repo_id)
    assert info.sha == git.out("rev-parse", "HEAD", cwd=fresh)
    assert len(info.siblings or []) == FILES + 1
    again = clone_from_cache(server, git, url, tmp_path / "again", older)
    assert git.out("rev-list", "--count", "HEAD", cwd=again) == "4"
    git.run("fsck", "--strict", cwd=again)


def cached_replies(server: LiveServer) -> set[str]:
    return {key for key, _mtime in server.app().state.blobs.keys("git-cache")}


def clone_from_cache(server: LiveServer, git: Git, url: str, dest: Path, older: set[str]) -> Path:
    """Wait until the first clone's reply is stored (in the background, beside the older
    entries), then clone again: the same request against the same refs replays it."""
    deadline = time.monotonic() + 30
    while not cached_replies(server) - older and time.monotonic() < deadline:
        time.sleep(0.1)
    assert cached_replies(server) - older
    return git.clone(url, dest, "--bare")


def test_a_new_commit_is_never_answered_from_an_older_cached_clone(
    server: LiveServer, tmp_path: Path
) -> None:
    owner = new_owner(server)
    files = {f"f{n}.bin": secrets.token_bytes(20_000) for n in range(4)}  # worth caching
    repo, _ = make_repo(owner, "cached", files)
    git = Git(tmp_path / "git-home")
    url = repo_url(server, repo.repo_id)
    older = cached_replies(server)
    git.clone(url, tmp_path / "first", "--bare")
    assert (
        git.out(
            "rev-list",
            "--count",
            "HEAD",
            cwd=clone_from_cache(server, git, url, tmp_path / "second", older),
        )
        == "2"
    )

    edit = commit(owner, repo, {"f0.bin": b"after the cache"}, title="API edit")
    after = git.clone(url, tmp_path / "after")
    assert git.out("rev-parse", "HEAD", cwd=after) == edit.sha
    assert (after / "f0.bin").read_bytes() == b"after the cache"
