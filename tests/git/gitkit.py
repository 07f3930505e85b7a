"""The real `git` binary against a live server: an isolated client and URL helpers."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from dulwich.object_format import DEFAULT_OBJECT_FORMAT
from dulwich.objects import Commit, ShaFile, Tree
from dulwich.pack import write_pack_objects

from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.repos.models import LfsObject, Repo, RepoLfsObject
from tests.live import LiveServer

PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def repo_url(
    server: LiveServer,
    repo_id: str,
    token: str | None = None,
    *,
    repo_type: str = "model",
    suffix: str = "",
) -> str:
    """`http://[user:token@]host/[datasets/]ns/name[.git]`: git sends the token as the Basic
    password, any username will do."""
    parts = urlsplit(server.url)
    auth = f"git-user:{token}@" if token else ""
    return f"http://{auth}{parts.netloc}/{PREFIXES[repo_type]}{repo_id}{suffix}"


@dataclass
class Git:
    """Runs git with its own HOME (no user or system config) and prompts off, so a missing
    credential fails at once instead of waiting for a terminal."""

    home: Path

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "GIT_AUTHOR_NAME": "Git Tester",
            "GIT_AUTHOR_EMAIL": "tester@example.com",
            "GIT_COMMITTER_NAME": "Git Tester",
            "GIT_COMMITTER_EMAIL": "tester@example.com",
        }
        self.env.pop("SSH_ASKPASS", None)

    def run(
        self, *args: str, cwd: Path | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"git {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
            )
        return result

    def out(self, *args: str, cwd: Path) -> str:
        return self.run(*args, cwd=cwd).stdout.strip()

    def clone(self, url: str, dest: Path, *args: str) -> Path:
        self.run("clone", *args, url, str(dest))
        return dest

    def commit_files(self, work: Path, files: dict[str, bytes | str], message: str) -> str:
        """Write files into the work tree, commit them all, return the new HEAD."""
        for path, content in files.items():
            target = work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            data = content.encode() if isinstance(content, str) else content
            target.write_bytes(data)
        self.run("add", "-A", cwd=work)
        self.run("commit", "-q", "-m", message, cwd=work)
        return self.out("rev-parse", "HEAD", cwd=work)


def lfs_pointer(data: bytes) -> str:
    oid = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n"


def give_lfs_object(server: LiveServer, repo: Repo, data: bytes) -> str:
    """Store a verified LFS object and record it as uploaded to repo, as the batch API's
    verify step does; returns its oid."""
    app = server.app()
    oid = hashlib.sha256(data).hexdigest()
    app.state.blobs.put(f"lfs/{oid}", [data], sha256=oid, size=len(data))
    with write_transaction(app.state.sessionmaker) as session:
        insert_ignore(session, LfsObject, [{"oid": oid, "size": len(data)}], ["oid"])
        insert_ignore(
            session, RepoLfsObject, [{"repo_id": repo.id, "oid": oid}], ["repo_id", "oid"]
        )
    return oid


def pkt(line: bytes) -> bytes:
    return f"{len(line) + 4:04x}".encode() + line


def pkt_lines(data: bytes) -> list[bytes]:
    """The payloads of a pkt-line stream (flush packets dropped)."""
    lines, at = [], 0
    while at + 4 <= len(data):
        size = int(data[at : at + 4], 16)
        if size:
            lines.append(data[at + 4 : at + size])
        at += max(size, 4)
    return lines


def raw_push(
    server: LiveServer, repo_id: str, token: str, commands: list[tuple[str, str, str]], pack: bytes
) -> list[str]:
    """POST git-receive-pack by hand (for packs git itself would never send); returns the
    report-status lines, e.g. ["unpack ok", "ng refs/heads/main <reason>"]."""
    body = b""
    for n, (old, new, ref) in enumerate(commands):
        caps = b"\0report-status side-band-64k agent=test" if n == 0 else b""
        body += pkt(f"{old} {new} {ref}".encode() + caps + b"\n")
    response = httpx.post(
        f"{repo_url(server, repo_id)}/git-receive-pack",
        content=body + b"0000" + pack,
        headers={"Content-Type": "application/x-git-receive-pack-request"},
        auth=("git", token),
        timeout=60,
    )
    response.raise_for_status()
    report = b"".join(line[1:] for line in pkt_lines(response.content) if line[:1] == b"\1")
    return [line.decode().rstrip("\n") for line in pkt_lines(report)]


def pack_of(*objects: ShaFile) -> bytes:
    out = io.BytesIO()
    write_pack_objects(out.write, list(objects), object_format=DEFAULT_OBJECT_FORMAT)
    return out.getvalue()


def commit_object(tree: Tree, parent: str, message: str = "crafted") -> Commit:
    commit = Commit()
    commit.tree, commit.parents = tree.id, [parent.encode()]
    commit.author = commit.committer = b"Crafty <crafty@example.com>"
    commit.author_time = commit.commit_time = 1_700_000_000
    commit.author_timezone = commit.commit_timezone = 0
    commit.message = message.encode() + b"\n"
    return commit
