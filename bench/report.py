"""The one convention every benchmark follows, so `python -m bench` can gather a table.

A benchmark is a module `bench/<name>.py` with a `main()` that prints what it measured. Each
figure that has a goal is printed on one line that ends with `(goal OP VALUE[UNIT])`, e.g.

    ratio resolve/static:  0.93x (goal >= 0.8x)
    server RSS growth: 12.5 MB (goal < 100 MB)

`goal_line` prints such a line; benchmarks written before it print the same shape by hand.
`parse_goal_lines` reads them back from a benchmark's output, and `Result.met` decides whether
the goal was met from the numbers on the line that carry the goal's unit (the worst of them,
when a line reports several).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_GOAL = re.compile(r"goal\s*(?P<op><=|>=|<|>)\s*(?P<value>[0-9.]+)\s*(?P<unit>x|%|MB|ms|s)?")
_NUMBER = r"(?P<n>-?[0-9]+(?:\.[0-9]+)?)\s*"


@dataclass(frozen=True)
class Result:
    """One figure of one benchmark, beside its goal."""

    bench: str
    name: str
    measured: str
    goal: str
    met: bool | None  # None when the line's numbers could not be read


def goal_line(name: str, value: float, unit: str, op: str, target: float) -> str:
    """Print and return `name: VALUE UNIT (goal OP TARGET UNIT)` (unit `x` is a ratio)."""
    space = "" if unit in ("", "x", "%") else " "
    line = f"{name}: {value:.2f}{space}{unit} (goal {op} {target:g}{space}{unit})"
    print(line, flush=True)
    return line


def _met(measured: str, op: str, target: float, unit: str) -> bool | None:
    """Whether the figures of `measured` (the text between the name and the goal) meet it."""
    pattern = _NUMBER + re.escape(unit) + (r"(?![A-Za-z])" if unit else "")
    numbers = [float(m["n"]) for m in re.finditer(pattern, measured)]
    if not numbers:
        return None
    worst = max(numbers) if op in ("<", "<=") else min(numbers)
    return _OPS[op](worst, target)


def parse_goal_lines(bench: str, lines: Iterable[str]) -> list[Result]:
    """Every `(goal …)` line of a benchmark's output as a Result.

    A figure printed once per section (`== s3 store … ==` headers) is named with its section,
    so that the table tells the rows apart.
    """
    found: list[tuple[str, Result]] = []
    section = ""
    for raw in lines:
        line = raw.strip()
        if line.startswith("==") and line.endswith("=="):
            section = line.strip("= ")
            continue
        match = _GOAL.search(line)
        if match is None:
            continue
        head = line[: match.start()].rstrip(" (,")
        name, _, measured = head.partition(":")
        if not measured:
            name, measured = head, ""
        name = re.sub(r"^\([a-z]\)\s*", "", name.strip())
        unit = match["unit"] or ""
        goal = f"{match['op']} {match['value']}{'' if unit in ('', 'x', '%') else ' '}{unit}"
        met = _met(measured, match["op"], float(match["value"]), unit)
        measured = measured.strip(" (,")
        measured += ")" * (measured.count("(") - measured.count(")"))
        found.append((section, Result(bench, name, measured, goal, met)))
    names = [result.name for _, result in found]
    return [
        replace(result, name=f"{section}: {result.name}")
        if section and names.count(result.name) > 1
        else result
        for section, result in found
    ]
