"""`python -m bench`: run every benchmark with small sizes, then print one table of goals.

Each module `bench/<name>.py` that defines `main()` runs in its own process (a crash or a hang
in one does not take the others with it), with the sizes below so that the whole run fits in
20 minutes on a 2-core machine. Its output is shown as it comes; the lines that end with
`(goal …)` (see `bench/report.py`) are gathered into a table, printed at the end and written
to `bench/results.md`.

    python -m bench                      # all, small sizes
    python -m bench hub_read xet_transfer  # some
    ATRIUM_BENCH_FULL=1 python -m bench  # the sizes each benchmark defaults to (long)
"""

from __future__ import annotations

import ast
import os
import platform
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.report import Result, parse_goal_lines

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOT_BENCHMARKS = {"__main__", "__init__", "report"}
TOTAL_BUDGET_S = 19 * 60  # the limit is 20 minutes for the whole run
DEFAULT_BUDGET_S = 240  # a benchmark that needs longer is stopped and reported as such

# Small sizes for the default run; each benchmark documents its own variables.
SMALL_ENV = {
    "ATRIUM_BENCH_SMALL": "1",  # a hint for benchmarks that have no size variable of their own
    "ATRIUM_BENCH_MB": "128",
    "ATRIUM_BENCH_RUNS": "1",
    "ATRIUM_BENCH_XET_MB": "64",
    "ATRIUM_BENCH_DOWNLOAD_MB": "512",
}
# Longer budgets where a benchmark is known to need them, even at small sizes.
BUDGET_S = {"hub_read": 300, "hub_transfer": 300, "metadata_scale": 300, "inference": 300}
# A stable order: fast ones first, so a run cut short still reports most figures.
ORDER = ["hub_read", "metadata_scale", "web_pages", "dataset_viewer", "memory", "hub_transfer"]


# Goals of benchmarks that print a figure without a `(goal …)` suffix: (bench, pattern of the
# line with the figure as its `figure` group, the name in the table, the goal from the issue).
LEGACY_GOALS = [
    ("hub_read", r"model_info\s{2,}(?P<figure>[^(]+)", "model_info", "< 20 ms"),
    (
        "hub_read",
        r"recursive tree, all pages\s{2,}(?P<figure>[^(]+)",
        "recursive tree, all pages",
        "< 20 ms",
    ),
    ("web_pages", r"card page p50 (?P<figure>[0-9.]+ ms)", "card page", "< 50 ms"),
]


def with_legacy_goals(bench: str, lines: list[str]) -> list[str]:
    """Lines of the benchmark's output, those matched by LEGACY_GOALS rewritten with a goal."""
    wanted = [(pattern, name, goal) for b, pattern, name, goal in LEGACY_GOALS if b == bench]
    out = []
    for line in lines:
        for pattern, name, goal in wanted:
            match = re.match(pattern, line)
            if match and "(goal" not in line:
                line = f"{name}: {match['figure'].strip()} (goal {goal})\n"
        out.append(line)
    return out


@dataclass
class Run:
    bench: str
    seconds: float
    status: str  # ok | failed (exit N) | timed out | skipped (budget)
    results: list[Result]


def discover() -> list[str]:
    """Modules of bench/ that define a top-level `main()`, in ORDER first, then by name."""
    found = []
    for path in sorted(HERE.glob("*.py")):
        if path.stem in NOT_BENCHMARKS:
            continue
        tree = ast.parse(path.read_text())
        if any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in tree.body):
            found.append(path.stem)
    ranked = [name for name in ORDER if name in found]
    return ranked + [name for name in found if name not in ranked]


def run_one(name: str, budget_s: float) -> Run:
    print(f"\n######## bench.{name} (budget {budget_s:.0f} s)", flush=True)
    env = {**os.environ}
    if not os.environ.get("ATRIUM_BENCH_FULL"):
        env.update(SMALL_ENV)
    started = time.monotonic()
    lines: list[str] = []
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    # A benchmark that hangs silently is killed by the timer, which also ends the read loop.
    watchdog = threading.Timer(budget_s, proc.kill)
    watchdog.start()
    try:
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
        code = proc.wait()
    finally:
        watchdog.cancel()
    timed_out = time.monotonic() - started >= budget_s
    status = "timed out" if timed_out else "ok" if code == 0 else f"failed (exit {code})"
    results = parse_goal_lines(name, with_legacy_goals(name, lines))
    return Run(name, time.monotonic() - started, status, results)


def table(runs: list[Run]) -> str:
    """The summary as a Markdown table: one row per figure with a goal, or per failed run."""
    rows = ["| benchmark | figure | measured | goal | met |", "|---|---|---|---|---|"]
    mark = {True: "yes", False: "**no**", None: "?"}
    for run in runs:
        for r in run.results:
            rows.append(f"| {r.bench} | {r.name} | {r.measured} | {r.goal} | {mark[r.met]} |")
        if run.status != "ok" or not run.results:
            note = run.status if run.status != "ok" else "ran; no figure with a goal"
            rows.append(f"| {run.bench} | ({note}, {run.seconds:.0f} s) | | | |")
    return "\n".join(rows)


def write_results(runs: list[Run], total_s: float) -> Path:
    sizes = "full sizes" if os.environ.get("ATRIUM_BENCH_FULL") else "small sizes"
    header = (
        f"# Benchmark results\n\n`python -m bench` on {platform.node()} "
        f"({os.cpu_count()} CPUs, Python {platform.python_version()}), {sizes}, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {total_s / 60:.1f} min in all.\n"
        "Each figure is measured against a baseline taken in the same run.\n\n"
    )
    timings = "\n".join(f"- `bench.{r.bench}`: {r.status}, {r.seconds:.0f} s" for r in runs)
    path = HERE / "results.md"
    path.write_text(header + table(runs) + "\n\n" + timings + "\n")
    return path


def main(argv: list[str]) -> int:
    if any(arg.startswith("-") for arg in argv):
        print(__doc__.strip())
        print("\nbenchmarks:", " ".join(discover()))
        return 0 if set(argv) & {"-h", "--help"} else 2
    unknown = sorted(set(argv) - set(discover()))
    if unknown:
        print(f"no such benchmark: {', '.join(unknown)}; choose from {' '.join(discover())}")
        return 2
    names = argv or discover()
    started = time.monotonic()
    runs: list[Run] = []
    for name in names:
        left = TOTAL_BUDGET_S - (time.monotonic() - started)
        if left < 30:
            runs.append(Run(name, 0.0, "skipped (total budget spent)", []))
            continue
        runs.append(run_one(name, min(BUDGET_S.get(name, DEFAULT_BUDGET_S), left)))
    total_s = time.monotonic() - started
    path = write_results(runs, total_s)
    print(f"\n######## summary ({total_s / 60:.1f} min; written to {path.relative_to(ROOT)})")
    print(table(runs))
    return 0 if all(run.status == "ok" for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
