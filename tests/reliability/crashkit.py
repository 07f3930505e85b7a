"""Processes that commit and get killed with SIGKILL, for the crash-safety tests.

Importing the app costs seconds, so a *zygote* process imports it once and forks one fresh
committer per crash (`python -m tests.reliability.crashkit`, started with a backend's
`ATRIUM_*` environment). Each committer opens its own engine and blob store after the fork,
runs a stream of commits through `app.repos.commits.create_commit`, and appends one JSON line
per acknowledged commit to an ack file (written before the next commit starts, so a line in
the file is a commit the client was told about). It dies by SIGKILL, either from the test
after a random delay, or by its own hand at a chosen point: inside the N-th blob write (half
the bytes sent), right before the N-th database commit, or right after it (durable but never
acknowledged). Nothing is mocked: the kill is real and so are the stores.

Protocol on the zygote's stdin/stdout, one JSON object per line: a `Job` in, then
`{"pid": N}` once forked, then `{"pid": N, "signal": S, "code": C}` when it is gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

KILL_MODES = ("timer", "put", "before_commit", "after_commit")


@dataclass(frozen=True)
class Job:
    """One committer: commits `commits` times to `branch` of repo `repo_id` (database id)."""

    repo_id: int
    author: str
    seed: str
    commits: int
    ack_path: str
    kill_mode: str = "timer"  # one of KILL_MODES; "timer" means the test kills it
    kill_at: int = 0  # the N-th blob write or database commit (1-based) for the other modes
    branch: str = "main"
    lfs_every: int = 3  # every N-th commit also adds an LFS file
    lfs_size: int = 300_000


@dataclass
class Ack:
    sha: str
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of its content


def content(seed: str, index: int, size: int) -> bytes:
    """Deterministic bytes, different for every (seed, index)."""
    out = bytearray()
    block = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}/{index}/{block}".encode()).digest()
        block += 1
    return bytes(out[:size])


# --- the committer (runs in the forked child) ----------------------------------------------


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _Countdown:
    def __init__(self, at: int):
        self.left = at

    def tick(self) -> bool:
        self.left -= 1
        return self.left == 0


class KillingBlobStore:
    """Delegates to a real store and SIGKILLs this process in the middle of the N-th put,
    after half of the chunks went to the store: the write is interrupted mid-object."""

    def __init__(self, inner: Any, at: int):
        self.inner = inner
        self.countdown = _Countdown(at)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, key: str, chunks: Iterable[bytes], **kwargs: Any) -> Any:
        if not self.countdown.tick():
            return self.inner.put(key, chunks, **kwargs)
        return self.inner.put(key, _half_then_die(list(chunks)), **kwargs)


def _half_then_die(chunks: list[bytes]) -> Iterator[bytes]:
    data = b"".join(chunks)
    yield data[: max(1, len(data) // 2)]
    _die()


def _store(job: Job) -> tuple[Any, Any]:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from app.blobs import create_blob_store
    from app.config import Settings
    from app.db.engine import make_engine, make_sessionmaker

    settings = Settings().resolved()
    factory = make_sessionmaker(make_engine(settings.database_url))
    blobs: Any = create_blob_store(settings)
    if job.kill_mode == "put":
        blobs = KillingBlobStore(blobs, job.kill_at)
    elif job.kill_mode in ("before_commit", "after_commit"):
        countdown = _Countdown(job.kill_at)

        def maybe_die(session: Session) -> None:
            if countdown.tick():
                _die()

        event.listen(Session, job.kill_mode, maybe_die)
    return factory, blobs


def _upload_lfs(factory: Any, blobs: Any, repo_id: int, data: bytes) -> str:
    """What the LFS upload does: verified object first, then the rows that let a commit of
    this repo point at it."""
    from app.db.engine import write_transaction
    from app.db.upsert import insert_ignore
    from app.repos.models import LfsObject, RepoLfsObject

    oid = hashlib.sha256(data).hexdigest()
    blobs.put(
        f"lfs/{oid}",
        [data[i : i + 65536] for i in range(0, len(data), 65536)],
        sha256=oid,
        size=len(data),
    )
    with write_transaction(factory) as session:
        insert_ignore(session, LfsObject, [{"oid": oid, "size": len(data)}], ["oid"])
        insert_ignore(
            session, RepoLfsObject, [{"repo_id": repo_id, "oid": oid}], ["repo_id", "oid"]
        )
    return oid


def run_job(job: Job) -> None:
    from app.repos.commits import AddFile, AddLfsFile, Author, DeletePath, Operation, create_commit
    from app.repos.manage import update_card

    factory, blobs = _store(job)
    author = Author(job.author, f"{job.author}@example.invalid")
    with open(job.ack_path, "a", buffering=1) as acks:
        for index in range(job.commits):
            files = {
                f"log/{job.seed}-{index}.txt": content(job.seed, index, 64 + index),
                "state.txt": f"{job.seed} {index}\n".encode(),
            }
            ops: list[Operation] = [AddFile(path, data) for path, data in files.items()]
            if index % 2:
                ops.append(DeletePath(f"scratch/{job.seed}-{index - 1}.txt"))
            else:
                ops.append(AddFile(f"scratch/{job.seed}-{index}.txt", b"scratch"))
            if job.lfs_every and index % job.lfs_every == job.lfs_every - 1:
                data = content(job.seed, -index, job.lfs_size)
                oid = _upload_lfs(factory, blobs, job.repo_id, data)
                path = f"weights/{job.seed}-{index}.bin"
                ops.append(AddLfsFile(path, oid, len(data)))
                files[path] = data
            result = create_commit(
                factory,
                blobs,
                job.repo_id,
                job.branch,
                ops,
                author=author,
                title=f"commit {job.seed} {index}",
                after_commit=update_card,
            )
            ack = Ack(result.sha, {p: hashlib.sha256(d).hexdigest() for p, d in files.items()})
            acks.write(json.dumps(asdict(ack)) + "\n")


def zygote(stdin: IO[str], stdout: IO[str]) -> None:
    """Fork one committer per job line; report its pid, then how it ended."""
    # Imported once here, shared by every fork.
    import app.repos.commits
    import app.repos.manage  # noqa: F401

    for line in stdin:
        job = Job(**json.loads(line))
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                run_job(job)
            except BaseException as exc:  # report, since nobody reads the child's stderr
                print(f"committer failed: {exc!r}", file=sys.stderr, flush=True)
                code = 3
            os._exit(code)
        print(json.dumps({"pid": pid}), file=stdout, flush=True)
        _, status = os.waitpid(pid, 0)
        ended = {"pid": pid, "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0}
        ended["code"] = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        print(json.dumps(ended), file=stdout, flush=True)


# --- the test side ---------------------------------------------------------------------------


class Zygote:
    """The zygote process as seen from the test."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path):
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.crashkit"],
            env={**os.environ, **env},
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
            bufsize=1,
        )

    def start(self, job: Job) -> int:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(asdict(job)) + "\n")
        self.proc.stdin.flush()
        return int(json.loads(self.proc.stdout.readline())["pid"])

    def wait(self) -> dict[str, int]:
        """How the last committer ended: {"signal": S, "code": C}."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"zygote exited with {self.proc.wait()}")
        ended: dict[str, int] = json.loads(line)
        return ended

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)
        self.log.close()


def read_acks(path: Path) -> list[Ack]:
    """Every complete line of the ack file (a line cut by the kill was never acknowledged)."""
    if not path.exists():
        return []
    acks = []
    for line in path.read_text().splitlines(keepends=True):
        if line.endswith("\n"):
            acks.append(Ack(**json.loads(line)))
    return acks


if __name__ == "__main__":
    zygote(sys.stdin, sys.stdout)
