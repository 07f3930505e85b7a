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
import random
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
    endpoint: str = ""  # commit through this server's HTTP API instead of create_commit
    token: str = ""
    repo_name: str = ""  # namespace/name, for the HTTP API

    def for_client(self, client: int) -> Job:
        return replace(self, seed=f"{self.seed}c{client}", clients=1)


@dataclass
class Ack:
    sha: str  # empty when refused
    files: dict[str, str] = field(default_factory=dict)  # path -> sha256 of its content
    refused: bool = False  # the commit was refused as stale (412)


def content(seed: str, index: int, size: int) -> bytes:
    """Deterministic bytes, different for every (seed, index)."""
    return random.Random(f"{seed}/{index}").randbytes(size)


def dying_key_path(job: Job) -> str:
    """Where a committer killed inside a blob write notes the key it was writing."""
    return job.ack_path + ".dying"


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
    after half of the bytes went to the store: the write is interrupted mid-object. The key
    is noted first in `dying_path`, for the test to check that no half object shows there."""

    def __init__(self, inner: Any, at: int, dying_path: str):
        self.inner = inner
        self.countdown = _Countdown(at)
        self.dying_path = dying_path

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, key: str, chunks: Iterable[bytes], **kwargs: Any) -> Any:
        if not self.countdown.tick():
            return self.inner.put(key, chunks, **kwargs)
        Path(self.dying_path).write_text(key)
        return self.inner.put(key, _half_then_die(list(chunks)), **kwargs)


def _half_then_die(chunks: list[bytes]) -> Iterator[bytes]:
    half = sum(map(len, chunks)) // 2
    for chunk in chunks:
        yield chunk
        half -= len(chunk)
        if half <= 0:
            break
    _die()


def _store(job: Job) -> tuple[Any, Any]:
    from sqlalchemy import event
    from sqlalchemy.orm import Session

    from app.blobs import create_blob_store
    from app.config import Settings
    from app.db.engine import make_engine, make_sessionmaker

    settings = Settings().resolved()
    # One connection at a time per committer (plus one spare): fifty of them must fit within
    # PostgreSQL's connection limit beside the live server.
    factory = make_sessionmaker(make_engine(settings.database_url, pool_size=1, max_overflow=1))
    blobs: Any = create_blob_store(settings)
    if job.kill_mode == "put":
        blobs = KillingBlobStore(blobs, job.kill_at, dying_key_path(job))
    elif job.kill_mode in ("before_commit", "after_commit"):
        countdown = _Countdown(job.kill_at)

        def maybe_die(session: Session) -> None:
            if countdown.tick():
                _die()

        event.listen(Session, job.kill_mode, maybe_die)
    return factory, blobs


def _connect(factory: Any) -> None:
    """Open this committer's one pooled connection before the start: when the database's
    connection limit is reached for a moment (other tests' servers hold some), wait for a
    free slot, as a server's pool would, rather than fail the race before it starts."""
    from sqlalchemy import text
    from sqlalchemy.exc import OperationalError

    deadline = time.monotonic() + 60
    while True:
        try:
            with factory() as session:
                session.execute(text("SELECT 1"))
            return
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


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


@dataclass
class Change:
    """One commit of a job, independent of how it is sent: files to write (large ones under
    `weights/`, which the default `.gitattributes` stores with LFS) and a path to delete."""

    files: dict[str, bytes]
    scratch: str  # added when even, deleted when odd
    delete_scratch: bool

    def digests(self) -> dict[str, str]:
        return {path: hashlib.sha256(data).hexdigest() for path, data in self.files.items()}


def change(job: Job, index: int) -> Change:
    """The index-th commit of a job: a new log file, a rewritten state file, a scratch file
    added or deleted, and every lfs_every-th time a large file."""
    files = {
        f"log/{job.seed}-{index}.txt": content(job.seed, index, 64 + index),
        "state.txt": f"{job.seed} {index}\n".encode(),
    }
    if job.lfs_every and index % job.lfs_every == job.lfs_every - 1:
        files[f"weights/{job.seed}-{index}.bin"] = content(
            job.lfs_seed or job.seed, -index, job.lfs_size
        )
    scratch_index = index - 1 if index % 2 else index
    return Change(files, f"scratch/{job.seed}-{scratch_index}.txt", bool(index % 2))


def _direct_operations(job: Job, step: Change, factory: Any, blobs: Any) -> list[Any]:
    from app.repos.commits import AddFile, AddLfsFile, DeletePath

    ops: list[Any] = []
    for path, data in step.files.items():
        if path.startswith("weights/"):
            ops.append(AddLfsFile(path, _upload_lfs(factory, blobs, job.repo_id, data), len(data)))
        else:
            ops.append(AddFile(path, data))
    ops.append(DeletePath(step.scratch) if step.delete_scratch else AddFile(step.scratch, b"x"))
    return ops


def _ack(acks: IO[str], ack: Ack) -> None:
    acks.write(json.dumps(asdict(ack)) + "\n")


def run_job(job: Job) -> None:
    """Commit through `create_commit` itself, or through the HTTP API when job.endpoint."""
    if job.endpoint:
        run_http_job(job)
        return
    from app.errors import PreconditionFailed
    from app.repos.commits import Author, create_commit
    from app.repos.manage import update_card

    factory, blobs = _store(job)
    _connect(factory)
    author = Author(job.author, f"{job.author}@example.invalid")
    time.sleep(max(0.0, job.start_at - time.time()))
    with open(job.ack_path, "a", buffering=1) as acks:
        for index in range(job.commits):
            step = change(job, index)
            ops = _direct_operations(job, step, factory, blobs)
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
                _ack(acks, Ack("", refused=True))
                return
            _ack(acks, Ack(result.sha, step.digests()))


def run_http_job(job: Job) -> None:
    """The same commits through huggingface_hub against a live server (preupload, LFS batch
    and upload, NDJSON commit): a commit is acknowledged when create_commit returns."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi(endpoint=job.endpoint, token=job.token)
    time.sleep(max(0.0, job.start_at - time.time()))
    with open(job.ack_path, "a", buffering=1) as acks:
        for index in range(job.commits):
            step = change(job, index)
            ops: list[Any] = [CommitOperationAdd(p, d) for p, d in step.files.items()]
            scratch = (
                CommitOperationDelete(step.scratch)
                if step.delete_scratch
                else CommitOperationAdd(step.scratch, b"x")
            )
            try:
                info = api.create_commit(
                    job.repo_name,
                    [*ops, scratch],
                    commit_message=f"commit {job.seed} {index}",
                    revision=job.branch,
                    parent_commit=job.parent_commit,
                )
            except HfHubHTTPError as exc:
                if exc.response is not None and exc.response.status_code == 412:
                    _ack(acks, Ack("", refused=True))
                    return
                raise
            _ack(acks, Ack(info.oid, step.digests()))


def zygote(stdin: IO[str], stdout: IO[str]) -> None:
    """Fork the committers of each job line; report their pids, then how they ended."""
    # Imported once here, shared by every fork.
    import huggingface_hub  # noqa: F401

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

    def check(self, ended: list[dict[str, int]], allowed: tuple[int, ...] = (0,)) -> None:
        """Fail with what the failed committers printed when any ended with another code."""
        failed = [e for e in ended if e["code"] not in allowed]
        if failed:
            self.log.flush()
            tail = Path(self.log.name).read_text(errors="replace")[-4000:]
            raise AssertionError(f"{len(failed)} committers failed: {failed}\n{tail}")

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
