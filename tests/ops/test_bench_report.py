"""`python -m bench` reads each benchmark's `(goal …)` lines into its summary table."""

from __future__ import annotations

import pytest

from bench.report import goal_line, parse_goal_lines


@pytest.mark.parametrize(
    ("line", "name", "measured", "goal", "met"),
    [
        (
            "    ratio resolve/static:  0.93x (goal >= 0.8x)",
            "ratio resolve/static",
            "0.93x",
            ">= 0.8x",
            True,
        ),
        (
            "  ratio Xet/raw throughput: 0.30x (goal >= 0.4x)",
            "ratio Xet/raw throughput",
            "0.30x",
            ">= 0.4x",
            False,
        ),
        (
            "(d) server RSS growth: upload 12.5 MB, downloads 130.0 MB (goal < 100 MB)",
            "server RSS growth",
            "upload 12.5 MB, downloads 130.0 MB",
            "< 100 MB",
            False,
        ),
        (
            "  xorb bytes stored again: 0.12 MB (0.50%, goal <= 5%)",
            "xorb bytes stored again",
            "0.12 MB (0.50%)",
            "<= 5%",
            True,
        ),
        ("model_info p99: 3 ms, slow (goal <= 2x)", "model_info p99", "3 ms, slow", "<= 2x", None),
        # Numbers in the name (429/503) are not figures.
        (
            "failures other than 429/503: 0.00 (goal <= 0)",
            "failures other than 429/503",
            "0.00",
            "<= 0",
            True,
        ),
    ],
)
def test_goal_lines_become_rows(
    line: str, name: str, measured: str, goal: str, met: bool | None
) -> None:
    (result,) = parse_goal_lines("b", ["noise", line, "more noise"])
    assert (result.name, result.measured, result.goal, result.met) == (name, measured, goal, met)


def test_goal_line_round_trips(capsys: pytest.CaptureFixture[str]) -> None:
    goal_line("search p50 at scale / small hub", 1.5, "x", "<=", 2)
    goal_line("server RSS growth", 250.0, "MB", "<", 100)
    rows = parse_goal_lines("b", capsys.readouterr().out.splitlines())
    assert [(r.measured, r.goal, r.met) for r in rows] == [
        ("1.50x", "<= 2x", True),
        ("250.00 MB", "< 100 MB", False),
    ]


def test_figures_printed_without_a_goal_get_the_issue_goal() -> None:
    from bench.__main__ import with_legacy_goals

    lines = [
        "model_info                       p50   25.01 ms  (  3.0x baseline)\n",
        "model_info blobs=true            p50   33.91 ms  (  4.1x baseline)\n",
        "card page p50 4.80 ms within the 50 ms goal\n",
    ]
    rows = parse_goal_lines("hub_read", with_legacy_goals("hub_read", lines))
    assert [(r.name, r.met) for r in rows] == [("model_info", False)]
    rows = parse_goal_lines("web_pages", with_legacy_goals("web_pages", lines))
    assert [(r.name, r.measured, r.met) for r in rows] == [("card page", "4.80 ms", True)]


def test_a_figure_printed_per_section_is_named_with_its_section() -> None:
    lines = [
        "== local store, 64 MB LFS file ==",
        "    ratio resolve/static:  0.49x (goal >= 0.8x)",
        "    other figure: 1.00x (goal >= 0.5x)",
        "== s3 store, 64 MB LFS file ==",
        "    ratio resolve/static:  1.65x (goal >= 0.8x)",
    ]
    assert [r.name for r in parse_goal_lines("b", lines)] == [
        "local store, 64 MB LFS file: ratio resolve/static",
        "other figure",
        "s3 store, 64 MB LFS file: ratio resolve/static",
    ]
