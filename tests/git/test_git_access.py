"""Who may clone and push over git: anonymous, read tokens, other users, private repos."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.git.gitkit import Git, repo_url
from tests.hub.readkit import Owner, make_repo, new_owner
from tests.live import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def git(tmp_path: Path) -> Git:
    return Git(tmp_path / "git-home")


@pytest.fixture
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


def test_private_repo_asks_anonymous_git_for_credentials(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "secret", {"a.txt": b"hidden"}, private=True)
    refs = httpx.get(repo_url(server, repo.repo_id) + "/info/refs?service=git-upload-pack")
    assert refs.status_code == 401 and refs.headers["www-authenticate"].startswith("Basic")

    anonymous = git.run("clone", repo_url(server, repo.repo_id), str(tmp_path / "a"), check=False)
    assert anonymous.returncode != 0
    assert "could not read Username" in anonymous.stderr  # git asked for credentials


def test_private_repo_is_not_found_for_another_user(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "secret2", {"a.txt": b"hidden"}, private=True)
    _, stranger = server.new_user()
    url = repo_url(server, repo.repo_id, stranger)
    refused = git.run("clone", url, str(tmp_path / "s"), check=False)
    assert refused.returncode != 0 and "not found" in refused.stderr


def test_read_token_clones_a_private_repo_but_cannot_push(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "secret3", {"a.txt": b"hidden"}, private=True)
    reader = server.cli("tokens", "create", owner.name, "--role", "read")
    read_token = reader.stdout.strip().splitlines()[-1]
    work = git.clone(repo_url(server, repo.repo_id, read_token), tmp_path / "w")
    assert (work / "a.txt").read_bytes() == b"hidden"

    git.commit_files(work, {"a.txt": "changed"}, "try to push")
    refused = git.run("push", cwd=work, check=False)
    assert refused.returncode != 0
    assert "remote: This token has read access only" in refused.stderr
    assert owner.api.model_info(repo.repo_id).sha != git.out("rev-parse", "HEAD", cwd=work)


def test_user_without_write_access_cannot_push_to_a_public_repo(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "public", {"a.txt": b"open"})
    before = owner.api.model_info(repo.repo_id).sha
    _, stranger = server.new_user()
    work = git.clone(repo_url(server, repo.repo_id, stranger), tmp_path / "w")
    git.commit_files(work, {"a.txt": "vandalism"}, "nope")
    refused = git.run("push", cwd=work, check=False)
    assert refused.returncode != 0
    # Refused per ref (a pull request of theirs would be taken), with the way to contribute.
    assert "[remote rejected]" in refused.stderr and "rights to write" in refused.stderr
    assert "refs/pr/N" in refused.stderr
    assert owner.api.model_info(repo.repo_id).sha == before


def test_anonymous_push_asks_for_credentials_and_a_bad_token_is_refused(
    server: LiveServer, owner: Owner, git: Git, tmp_path: Path
) -> None:
    repo, _ = make_repo(owner, "anon", {"a.txt": b"open"})
    work = git.clone(repo_url(server, repo.repo_id), tmp_path / "w")
    git.commit_files(work, {"a.txt": "anonymous"}, "anonymous")
    anonymous = git.run("push", cwd=work, check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr

    bad = repo_url(server, repo.repo_id, "atr_not-a-real-token")
    wrong = git.run("push", bad, "main", cwd=work, check=False)
    assert wrong.returncode != 0 and "Authentication failed" in wrong.stderr


def test_missing_repo_and_dumb_protocol_answers(server: LiveServer, owner: Owner) -> None:
    headers = {"Authorization": f"Bearer {owner.token}"}
    missing = httpx.get(
        repo_url(server, f"{owner.name}/nope") + "/info/refs?service=git-upload-pack",
        headers=headers,
    )
    assert (
        missing.status_code == 404 and missing.text == f"Repository not found: {owner.name}/nope\n"
    )
    repo, _ = make_repo(owner, "dumb")
    dumb = httpx.get(repo_url(server, repo.repo_id) + "/info/refs")
    assert dumb.status_code == 400 and "smart HTTP" in dumb.text
