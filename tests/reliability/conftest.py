"""Fixtures of the reliability tests; the figures they count are printed by tests/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live import ROOT, Backend, LiveServer, start_server
from tests.reliability.crashkit import Zygote


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


HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The long variants (50+ crashes, 50 racing clients, long fuzzing) run only when asked
    for, with `-m slow` or ATRIUM_RUN_SLOW=1, so that a plain `pytest` stays in CI's budget."""
    if "slow" in (config.option.markexpr or "") or os.environ.get("ATRIUM_RUN_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="long variant: run with -m slow or ATRIUM_RUN_SLOW=1")
    for item in items:
        if item.get_closest_marker("slow") and HERE in item.path.parents:
            item.add_marker(skip)
