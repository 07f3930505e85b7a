"""git clone / fetch / push with the real git against a live server: one history with the API."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from huggingface_hub import hf_hub_download

from tests.git.gitkit import Git, give_lfs_object, lfs_pointer, repo_url
from tests.hub.readkit import Owner, commit, make_repo, new_owner, no_xet  # noqa: F401
from tests.live import LiveServer

pytestmark = pytest.mark.e2e

README = "---\nlicense: apache-2.0\ntags:\n- pushed-with-git\n---\n# Pushed with git\n"


@pytest.fixture
def git(tmp_path: Path) -> Git:
    return Git(tmp_path / "git-home")


@pytest.fixture
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


def head(git: Git, work: Path) -> str:
    return git.out("rev-parse", "HEAD", cwd=work)


def test_clone_of_a_new_repo_has_the_api_initial_commit(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "fresh")
    work = git.clone(repo_url(server, repo.repo_id), tmp_path / "fresh")  # anonymous
    assert head(git, work) == owner.api.model_info(repo.repo_id).sha
    assert (work / ".gitattributes").read_text().startswith("*.7z filter=lfs")
    assert git.out("symbolic-ref", "HEAD", cwd=work) == "refs/heads/main"


def test_push_creates_the_commit_the_api_reports(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path, hf_home: Path
) -> None:
    repo, _ = make_repo(owner, "pushed")
    work = git.clone(repo_url(server, repo.repo_id, owner.token, suffix=".git"), tmp_path / "w")
    files = {"README.md": README, "src/deep/model.py": "print('hi')\n", "data.bin": b"\0\1\2"}
    local = git.commit_files(work, files, "Add model code")
    git.run("push", cwd=work)

    info = owner.api.model_info(repo.repo_id, files_metadata=True)
    assert info.sha == local
    assert info.card_data is not None and info.card_data["license"] == "apache-2.0"
    assert "pushed-with-git" in (info.tags or [])
    sizes = {s.rfilename: s.size for s in info.siblings or []}
    assert sizes["src/deep/model.py"] == len("print('hi')\n") and sizes["data.bin"] == 3
    path = hf_hub_download(
        repo.repo_id, "src/deep/model.py", endpoint=server.url, token=owner.token
    )
    assert Path(path).read_text() == "print('hi')\n"
    [latest, *_] = owner.api.list_repo_commits(repo.repo_id)
    assert latest.commit_id == local and latest.title == "Add model code"


def test_api_commit_is_seen_by_git_pull(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "pulled", {"a.txt": b"one"})
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    result = commit(owner, repo, {"a.txt": b"two", "b/c.txt": b"three"}, title="API edit")
    git.run("pull", "--ff-only", cwd=work)
    assert head(git, work) == result.sha
    assert (work / "a.txt").read_bytes() == b"two" and (work / "b/c.txt").read_bytes() == b"three"


def test_branches_and_tags_are_pushed_and_deleted(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "refs")
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    git.run("checkout", "-q", "-b", "feature/x", cwd=work)
    feature = git.commit_files(work, {"f.txt": "feature"}, "feature work")
    git.run("tag", "v1-light", cwd=work)
    git.run("tag", "-a", "v1", "-m", "release one", cwd=work)
    git.run("push", "origin", "feature/x", "v1-light", "v1", cwd=work)

    refs = owner.api.list_repo_refs(repo.repo_id)
    assert {b.name: b.target_commit for b in refs.branches}["feature/x"] == feature
    tags = {t.name: t.target_commit for t in refs.tags}
    assert tags["v1-light"] == feature
    assert owner.api.model_info(repo.repo_id, revision="v1").sha == feature
    fresh = git.clone(repo_url(server, repo.repo_id), tmp_path / "fresh")
    assert git.out("cat-file", "-p", "v1", cwd=fresh).endswith("release one")  # annotated

    git.run("push", "origin", "--delete", "feature/x", "v1", cwd=work)
    refs = owner.api.list_repo_refs(repo.repo_id)
    assert [b.name for b in refs.branches] == ["main"]
    assert [t.name for t in refs.tags] == ["v1-light"]
    remote = git.out("ls-remote", "origin", cwd=work)
    assert "feature/x" not in remote and "refs/tags/v1-light" in remote


def test_non_fast_forward_push_is_refused_unless_forced(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "nonff", {"a.txt": b"base"})
    url = repo_url(server, repo.repo_id, owner.token)
    first, second = git.clone(url, tmp_path / "one"), git.clone(url, tmp_path / "two")
    winner = git.commit_files(first, {"a.txt": "from one"}, "one")
    git.run("push", cwd=first)
    git.commit_files(second, {"a.txt": "from two"}, "two")

    refused = git.run("push", cwd=second, check=False)
    assert refused.returncode != 0 and "fetch first" in refused.stderr
    assert owner.api.model_info(repo.repo_id).sha == winner

    git.run("push", "--force", cwd=second)
    assert owner.api.model_info(repo.repo_id).sha == head(git, second)


def test_push_racing_an_api_commit_is_told_to_fetch_first(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    """A pre-push hook commits through the API after git read the refs, so the server sees
    a stale old value: its compare-and-swap refuses the push and the API commit stays."""
    repo, _ = make_repo(owner, "race", {"a.txt": b"base"})
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    git.commit_files(work, {"a.txt": "git"}, "from git")
    marker = tmp_path / "api-sha"
    hook = work / ".git/hooks/pre-push"
    hook.write_text(f"#!/bin/sh\nexec {_api_commit_command(server, owner, repo.id, marker)}\n")
    hook.chmod(0o755)

    refused = git.run("push", cwd=work, check=False)
    assert refused.returncode != 0
    assert "[remote rejected] main -> main (fetch first" in refused.stderr
    assert owner.api.model_info(repo.repo_id).sha == marker.read_text()


def _api_commit_command(server: LiveServer, owner: Owner, repo_id: int, marker: Path) -> str:
    """A shell command that makes an API commit in-process on the server's storage."""
    import shlex
    import sys

    from tests.live import ROOT

    code = (
        "from app.config import Settings; from app.main import create_app;"
        "from app.repos.commits import AddFile, Author, create_commit;"
        "from app.repos.manage import update_card;"
        "app = create_app(Settings());"
        f"r = create_commit(app.state.sessionmaker, app.state.blobs, {repo_id}, 'main',"
        " [AddFile('a.txt', b'api')], author=Author('api', 'api@example.com'),"
        " title='from the API', after_commit=update_card);"
        f"open({str(marker)!r}, 'w').write(r.sha)"
    )
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in server.env.items())
    return f"env {env} PYTHONPATH={ROOT} {sys.executable} -c {shlex.quote(code)}"


def test_shallow_clone_then_unshallow(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "shallow", {"a.txt": b"1"})
    for n in range(2, 5):
        last = commit(owner, repo, {"a.txt": str(n).encode()}, title=f"edit {n}")
    url = repo_url(server, repo.repo_id)
    work = git.clone(url, tmp_path / "w", "--depth", "1")
    assert git.out("rev-list", "--count", "HEAD", cwd=work) == "1"
    assert head(git, work) == last.sha and (work / "a.txt").read_text() == "4"
    git.run("fetch", "--unshallow", cwd=work)
    assert git.out("rev-list", "--count", "HEAD", cwd=work) == "5"  # with the initial commit


def test_dataset_repo_over_its_prefixed_url(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, f"ds-{secrets.token_hex(3)}", repo_type="dataset")
    url = repo_url(server, repo.repo_id, owner.token, repo_type="dataset", suffix=".git")
    work = git.clone(url, tmp_path / "ds")
    local = git.commit_files(work, {"train.csv": "a,b\n1,2\n"}, "data")
    git.run("push", cwd=work)
    assert owner.api.dataset_info(repo.repo_id).sha == local


def test_lfs_pointer_to_an_object_of_this_repo_is_accepted(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path, hf_home: Path
) -> None:
    repo, _ = make_repo(owner, "lfs-ok")
    weights = secrets.token_bytes(3000)
    oid = give_lfs_object(server, repo, weights)
    work = git.clone(repo_url(server, repo.repo_id, owner.token), tmp_path / "w")
    local = git.commit_files(work, {"model.safetensors": lfs_pointer(weights)}, "weights")
    git.run("push", cwd=work)

    info = owner.api.model_info(repo.repo_id, files_metadata=True)
    assert info.sha == local
    [sibling] = [s for s in info.siblings or [] if s.rfilename == "model.safetensors"]
    assert sibling.size == len(weights) and sibling.lfs is not None
    assert sibling.lfs.sha256 == oid
    path = hf_hub_download(
        repo.repo_id, "model.safetensors", endpoint=server.url, token=owner.token
    )
    assert Path(path).read_bytes() == weights


def test_deep_history_clone_reuses_objects_across_commits(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    """A revert re-uses a blob from old history that git does not send again."""
    repo, _ = make_repo(owner, "revert", {"a.txt": b"v1 " * 100})
    url = repo_url(server, repo.repo_id, owner.token)
    work = git.clone(url, tmp_path / "w")
    git.commit_files(work, {"a.txt": "v2 " * 100, "moved/b.txt": "v1 " * 100}, "edit and copy")
    git.run("push", cwd=work)
    git.run("revert", "--no-edit", "HEAD", cwd=work)
    git.run("push", cwd=work)
    assert owner.api.model_info(repo.repo_id).sha == head(git, work)
    again = git.clone(url, tmp_path / "again")
    assert (again / "a.txt").read_text() == "v1 " * 100 and not (again / "moved").exists()


def test_partial_clone_fetches_missing_files_on_checkout(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    files = {"a.txt": b"alpha", "deep/b.txt": b"beta"}
    repo, _ = make_repo(owner, "partial", files)
    url = repo_url(server, repo.repo_id)
    work = git.clone(url, tmp_path / "w", "--filter=blob:none", "--no-checkout")
    objects = git.out("rev-list", "--objects", "--missing=print", "HEAD", cwd=work)
    assert len([line for line in objects.splitlines() if line.startswith("?")]) == 3
    git.run("checkout", "main", cwd=work)  # fetches the three blobs by sha
    assert (work / "a.txt").read_bytes() == b"alpha"
    assert (work / "deep/b.txt").read_bytes() == b"beta"
