"""Fixtures of the reliability tests, and the figures (figures.py) printed after the summary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import ROOT, Backend, LiveServer, start_server
from tests.reliability.crashkit import Zygote
from tests.reliability.figures import FIGURES


@pytest.fixture(scope="session")
def zygote(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Zygote]:
    """The process that forks committers on this backend (crashkit.py)."""
    log = tmp_path_factory.mktemp("zygote") / "zygote.log"
    # Xet is the client's default when installed; these committers use the LFS path.
    forker = Zygote({**backend.settings_env(), "HF_HUB_DISABLE_XET": "1"}, ROOT, log)
    yield forker
    forker.close()


@pytest.fixture(scope="module")
def crash_server(backend: Backend) -> Iterator[LiveServer]:
    """A server of the module's own, which its tests may SIGKILL and restart."""
    live = start_server(backend)
    yield live
    live.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, count in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{count:>8}  {name}")
