"""`git clone` of a 2,000-file repo with history: Atrium's smart HTTP against `git daemon`.

Goal (issue 6): Atrium clones at least half as fast as git's own server. The baseline is
measured in the same run: the same repo, mirrored into a bare repository and served by
`git daemon` on loopback (C, packs already on disk), cloned by the same git binary. Each side
is cloned ATRIUM_BENCH_RUNS times (default 3): Atrium's first clone computes the pack object by
object, later ones replay the reply cached by the first (app/git/cache.py); both are compared
with git daemon's median. The push that builds the repo is timed too (no goal).

    .venv/bin/python -m bench.git_clone [--files 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.report import goal_line
from tests.git.gitkit import Git, repo_url
from tests.hub.readkit import make_repo, new_owner
from tests.live import Backend, LiveServer, free_port, start_server

COMMITS = 3  # after the initial one: one with every file, then edits


def build_repo(live: LiveServer, git: Git, work: Path, files: int) -> tuple[str, float]:
    """Push `files` files in one commit, then edits; returns (clone URL, push seconds)."""
    owner = new_owner(live)
    repo, _ = make_repo(owner, "big")
    url = repo_url(live, repo.repo_id, owner.token)
    git.clone(url, work)
    git.commit_files(
        work, {f"d{n % 40:02d}/f{n:05d}.txt": f"{n}\n" * 20 for n in range(files)}, "all"
    )
    for step in range(1, COMMITS):
        edits = {f"d{step:02d}/f{n:05d}.txt": f"edit {step}\n" for n in range(step, files, 40)}
        git.commit_files(work, edits, f"edit {step}")
    started = time.perf_counter()
    git.run("push", "-q", cwd=work, timeout=600)
    return url, time.perf_counter() - started


def clone_times(git: Git, url: str, into: Path, runs: int) -> list[float]:
    times = []
    for run in range(runs):
        started = time.perf_counter()
        git.run("clone", "-q", url, str(into / f"clone-{run}"), timeout=600)
        times.append(time.perf_counter() - started)
    return times


def with_git_daemon(
    git: Git, source: str, root: Path, use: Callable[[str], list[float]]
) -> list[float]:
    """Mirror the repo into root, serve it with `git daemon` and call use(url)."""
    git.run("clone", "-q", "--mirror", source, str(root / "repo.git"), timeout=600)
    port = free_port()
    daemon = subprocess.Popen(
        [
            "git",
            "daemon",
            "--reuseaddr",
            "--export-all",
            f"--base-path={root}",
            "--listen=127.0.0.1",
            f"--port={port}",
            str(root),
        ],
        env=git.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"git://127.0.0.1:{port}/repo.git"
        for _ in range(100):  # until it accepts connections
            if git.run("ls-remote", url, check=False).returncode == 0:
                break
            time.sleep(0.1)
        return use(url)
    finally:
        daemon.terminate()
        daemon.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=2000)
    args = parser.parse_args()
    runs = int(os.environ.get("ATRIUM_BENCH_RUNS", "3"))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        live = start_server(Backend("sqlite", tmp / "data"))
        try:
            git = Git(tmp / "home")
            url, pushed = build_repo(live, git, tmp / "src", args.files)
            print(f"push of {args.files} files in {COMMITS} commits: {pushed:.2f} s")
            (tmp / "atrium").mkdir()
            (tmp / "daemon").mkdir()
            atrium = clone_times(git, url, tmp / "atrium", runs)
            daemon = with_git_daemon(
                git, url, tmp / "daemon", lambda u: clone_times(git, u, tmp / "daemon", runs)
            )
        finally:
            live.stop()
    print(
        f"atrium clones: {', '.join(f'{t:.2f}' for t in atrium)} s (the first computes the reply)"
    )
    print(f"git daemon clones: {', '.join(f'{t:.2f}' for t in daemon)} s")
    baseline = statistics.median(daemon)
    goal_line("first clone speed atrium/git-daemon", baseline / atrium[0], "x", ">=", 0.5)
    if runs > 1:  # later clones replay the cached reply (app/git/cache.py)
        repeat = statistics.median(atrium[1:])
        goal_line("repeat clone speed atrium/git-daemon", baseline / repeat, "x", ">=", 0.5)


if __name__ == "__main__":
    main()
