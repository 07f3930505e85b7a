"""Fixtures of the reliability tests, and the figures (figures.py) printed after the summary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import ROOT, Backend
from tests.reliability.crashkit import Zygote
from tests.reliability.figures import FIGURES


@pytest.fixture(scope="session")
def zygote(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """The process that forks committers on this backend (crashkit.py)."""
    log = tmp_path_factory.mktemp("zygote") / "zygote.log"
    forker = Zygote(backend.settings_env(), ROOT, log)
    yield forker
    forker.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, count in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{count:>8}  {name}")
