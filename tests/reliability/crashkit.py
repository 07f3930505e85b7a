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
`{"pids": [...]}` once its committers are forked, then `{"ended": [{"pid", "signal", "code"}]}`
when they are all gone.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
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
    lfs_seed: str = ""  # seeds the LFS content instead of seed (the same file from many)
    clients: int = 1  # committers forked at once, each with its own seed
    parent_commit: str | None = None  # pin every commit's base (a stale one is refused)
    start_at: float = 0.0  # unix time the committers wait for, so that they start together

    def for_client(self, client: int) -> Job:
        return replace(self, seed=f"{self.seed}c{client}", clients=1)


@dataclass
class Ack:
    sha: str  # empty when refused
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of its content
    refused: bool = False  # the commit was refused as stale (412)


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


def _operations(
    job: Job, index: int, factory: Any, blobs: Any
) -> tuple[list[Any], dict[str, bytes]]:
    """The index-th commit of a job: a new log file, a rewritten state file, a scratch file
    added or deleted, and every lfs_every-th time a large file; with the content of each file
    the commit leaves."""
    from app.repos.commits import AddFile, AddLfsFile, DeletePath

    files = {
        f"log/{job.seed}-{index}.txt": content(job.seed, index, 64 + index),
        "state.txt": f"{job.seed} {index}\n".encode(),
    }
    ops: list[Any] = [AddFile(path, data) for path, data in files.items()]
    if index % 2:
        ops.append(DeletePath(f"scratch/{job.seed}-{index - 1}.txt"))
    else:
        ops.append(AddFile(f"scratch/{job.seed}-{index}.txt", b"scratch"))
    if job.lfs_every and index % job.lfs_every == job.lfs_every - 1:
        data = content(job.lfs_seed or job.seed, -index, job.lfs_size)
        oid = _upload_lfs(factory, blobs, job.repo_id, data)
        path = f"weights/{job.seed}-{index}.bin"
        ops.append(AddLfsFile(path, oid, len(data)))
        files[path] = data
    return ops, files


def run_job(job: Job) -> None:
    from app.errors import PreconditionFailed
    from app.repos.commits import Author, create_commit
    from app.repos.manage import update_card

    factory, blobs = _store(job)
    author = Author(job.author, f"{job.author}@example.invalid")
    time.sleep(max(0.0, job.start_at - time.time()))
    with open(job.ack_path, "a", buffering=1) as acks:
        for index in range(job.commits):
            ops, files = _operations(job, index, factory, blobs)
            try:
                result = create_commit(
                    factory,
                    blobs,
                    job.repo_id,
                    job.branch,
                    ops,
                    author=author,
                    title=f"commit {job.seed} {index}",
                    parent_commit=job.parent_commit,
                    after_commit=update_card,
                )
            except PreconditionFailed:
                acks.write(json.dumps(asdict(Ack("", refused=True))) + "\n")
                return
            ack = Ack(result.sha, {p: hashlib.sha256(d).hexdigest() for p, d in files.items()})
            acks.write(json.dumps(asdict(ack)) + "\n")


def zygote(stdin: IO[str], stdout: IO[str]) -> None:
    """Fork the committers of each job line; report their pids, then how they ended."""
    # Imported once here, shared by every fork.
    import app.repos.commits
    import app.repos.manage  # noqa: F401

    for line in stdin:
        job = Job(**json.loads(line))
        pids = [_fork(job if job.clients == 1 else job.for_client(k)) for k in range(job.clients)]
        print(json.dumps({"pids": pids}), file=stdout, flush=True)
        ended = [_reap(pid) for pid in pids]
        print(json.dumps({"ended": ended}), file=stdout, flush=True)


def _fork(job: Job) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        run_job(job)
    except BaseException as exc:  # report it: nobody reads the child's exit otherwise
        print(f"committer failed: {exc!r}", file=sys.stderr, flush=True)
        code = 3
    os._exit(code)


def _reap(pid: int) -> dict[str, int]:
    _, status = os.waitpid(pid, 0)
    killed = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
    return {"pid": pid, "signal": killed, "code": os.WEXITSTATUS(status) if not killed else -1}


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

    def start(self, job: Job) -> list[int]:
        """Fork the job's committers; their pids."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(asdict(job)) + "\n")
        self.proc.stdin.flush()
        pids: list[int] = self._answer()["pids"]
        return pids

    def wait(self) -> list[dict[str, int]]:
        """How each committer ended: [{"pid": P, "signal": S, "code": C}, …]."""
        ended: list[dict[str, int]] = self._answer()["ended"]
        return ended

    def _answer(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"zygote exited with {self.proc.wait()}; see {self.log.name}")
        answer: dict[str, Any] = json.loads(line)
        return answer

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
