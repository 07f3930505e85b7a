"""A repo with 2,000 files and some history, pushed and cloned with git (timings printed)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from app.repos.models import Repo
from tests.git.gitkit import Git, repo_url
from tests.hub.readkit import Owner, commit, make_repo, new_owner
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
    assert_later_clones_replay_the_cached_reply(server, git, url, tmp_path, owner, repo)


def cached_replies(server: LiveServer) -> set[str]:
    return {key for key, _mtime in server.app().state.blobs.keys("git-cache")}


def assert_later_clones_replay_the_cached_reply(
    server: LiveServer, git: Git, url: str, tmp_path: Path, owner: Owner, repo: Repo
) -> None:
    """The first clone's reply is stored (in the background); the same request against the
    same refs replays it, and a new commit changes the refs, so the next clone is fresh."""
    deadline = time.monotonic() + 30
    while not cached_replies(server) and time.monotonic() < deadline:
        time.sleep(0.1)
    before = cached_replies(server)
    assert before
    again = git.clone(url, tmp_path / "again", "--bare")
    git.run("fsck", "--strict", cwd=again)
    assert git.out("rev-list", "--count", "HEAD", cwd=again) == "4"

    edit = commit(owner, repo, {"shard00/part0000.txt": b"after the cache"}, title="API edit")
    after = git.clone(url, tmp_path / "after")
    assert git.out("rev-parse", "HEAD", cwd=after) == edit.sha
    assert (after / "shard00/part0000.txt").read_bytes() == b"after the cache"
