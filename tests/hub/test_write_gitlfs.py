"""The real git-lfs client against the LFS API alone (`lfs.url` set; no git push needed):
upload with `git lfs push`, download with `git lfs smudge`, HTTP Basic with the token."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.hub.readkit import Owner, big_bytes, new_owner
from tests.live import LiveServer


def run(args: list[str], cwd: Path, env: dict[str, str], stdin: bytes = b"") -> bytes:
    done = subprocess.run(args, cwd=cwd, env=env, input=stdin, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    return {
        **os.environ,
        "HOME": str(home),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }


def lfs_repo(work: Path, env: dict[str, str], url: str) -> None:
    work.mkdir()
    run(["git", "init", "-q", "-b", "main"], work, env)
    run(["git", "lfs", "install", "--local"], work, env)
    run(["git", "config", "lfs.url", url], work, env)
    run(["git", "remote", "add", "origin", url.removesuffix("/info/lfs")], work, env)


def test_git_lfs_push_then_smudge_through_the_batch_api(
    server: LiveServer, tmp_path: Path, git_env: dict[str, str]
) -> None:
    owner: Owner = new_owner(server)
    repo_id = f"{owner.name}/gl{secrets.token_hex(3)}"
    owner.api.create_repo(repo_id, private=True)
    host = server.url.removeprefix("http://")
    lfs_url = f"http://git:{owner.token}@{host}/{repo_id}.git/info/lfs"
    data = big_bytes(700_000, seed=11)
    oid = hashlib.sha256(data).hexdigest()

    pusher = tmp_path / "push"
    lfs_repo(pusher, git_env, lfs_url)
    run(["git", "lfs", "track", "*.bin"], pusher, git_env)
    (pusher / "w.bin").write_bytes(data)
    run(["git", "add", ".gitattributes", "w.bin"], pusher, git_env)
    run(["git", "commit", "-q", "-m", "weights"], pusher, git_env)
    run(["git", "lfs", "push", "origin", "main"], pusher, git_env)

    # The object now belongs to the repo: a commit may name it, and it reads back.
    line = {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid}}
    body = '{"key":"header","value":{"summary":"pointer"}}\n' + json.dumps(line)
    commit = httpx.post(
        f"{server.url}/api/models/{repo_id}/commit/main",
        content=body,
        headers={"authorization": f"Bearer {owner.token}"},
    )
    assert commit.status_code == 200, commit.text
    resolved = httpx.get(
        f"{server.url}/{repo_id}/resolve/main/w.bin",
        headers={"authorization": f"Bearer {owner.token}"},
    )
    assert resolved.content == data

    puller = tmp_path / "pull"
    lfs_repo(puller, git_env, lfs_url)
    pointer = (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n"
    ).encode()
    assert run(["git", "lfs", "smudge", "w.bin"], puller, git_env, pointer) == data


def test_git_lfs_without_credentials_on_a_private_repo_fails_cleanly(
    server: LiveServer, tmp_path: Path, git_env: dict[str, str]
) -> None:
    owner = new_owner(server)
    repo_id = f"{owner.name}/gl{secrets.token_hex(3)}"
    owner.api.create_repo(repo_id, private=True)
    work = tmp_path / "anon"
    lfs_repo(work, git_env, f"{server.url}/{repo_id}.git/info/lfs")
    pointer = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"a" * 64 + b"\nsize 3\n"
    done = subprocess.run(
        ["git", "lfs", "smudge", "x.bin"],
        cwd=work,
        env=git_env,
        input=pointer,
        capture_output=True,
        timeout=60,
    )
    # A 401 (not a 404) makes git-lfs ask git's credential helpers, here unavailable.
    assert done.returncode != 0 and b"credentials" in done.stderr.lower()
