"""Fixtures: a live server per backend (sqlite+folder, postgres+s3), real clients.

Backends come from ATRIUM_TEST_BACKENDS (default "sqlite,postgres"). Under CI=true an
unreachable PostgreSQL fails the run instead of skipping it.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The clients must not call outside services (hf-protocol.md §1, §13).
os.environ.update(
    {
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DISABLE_SAFETENSORS_CONVERSION": "1",
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",  # the `hf` CLI asks the package index otherwise
        "TOKENIZERS_PARALLELISM": "false",
    }
)
os.environ.pop("HF_TOKEN", None)

from tests.live import (
    AWS_ENV,
    SHARED_SECRET_ENV,
    Backend,
    LiveServer,
    moto_server,
    postgres_available,
    postgres_database,
    start_server,
)
from tests.reliability.figures import FIGURES

BACKENDS = [b.strip() for b in os.environ.get("ATRIUM_TEST_BACKENDS", "sqlite,postgres").split(",")]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture(scope="session", params=BACKENDS)
def backend_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "postgres" and not postgres_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is unreachable; CI needs it")
        pytest.skip("PostgreSQL is not reachable")
    return name


@pytest.fixture(scope="session")
def backend(
    backend_name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Backend]:
    data_dir = tmp_path_factory.mktemp(f"atrium-{backend_name}")
    if backend_name == "sqlite":
        yield Backend("sqlite", data_dir)
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    with postgres_database() as db_url:
        env = {
            "ATRIUM_DATABASE_URL": db_url,
            "ATRIUM_STORAGE_URL": f"s3://atrium-{secrets.token_hex(4)}/blobs",
            "ATRIUM_S3_ENDPOINT_URL": endpoint,
            **AWS_ENV,
            **SHARED_SECRET_ENV,
        }
        os.environ.update(AWS_ENV)
        yield Backend("postgres", data_dir, env)


@pytest.fixture(scope="session")
def server(backend: Backend) -> Iterator[LiveServer]:
    live = start_server(backend)
    yield live
    live.stop()


@pytest.fixture
def user(server: LiveServer) -> tuple[str, str]:
    """A fresh user with a write token: (name, token)."""
    return server.new_user()


@pytest.fixture
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty huggingface_hub cache for this test."""
    home = tmp_path / "hf-home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    # huggingface_hub copies these variables into constants when imported (constants.py).
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    return home


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The suite runs on two pytest-xdist workers (`-n 2 --dist loadgroup` in pyproject.toml):
    every test of one backend goes to the same worker, which starts that backend's live server
    once, and the two backends run side by side."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "backend_name" in callspec.params:
            item.add_marker(pytest.mark.xdist_group(callspec.params["backend_name"]))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """An xdist worker hands its reliability figures (figures.py) to the controller."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["figures"] = dict(FIGURES)


def pytest_testnodedown(node: Any, error: object) -> None:
    FIGURES.update(getattr(node, "workeroutput", {}).get("figures", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("reliability figures")
    for name, count in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{count:>8}  {name}")


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    """Headless Chromium (tests/web/browser.py), one per test module."""
    from tests.web.browser import chromium

    with chromium() as browser:
        yield browser


@pytest.fixture(autouse=True)
def _fresh_browser_logs(request: pytest.FixtureRequest) -> None:
    """A test that drives the browser starts with empty console and network logs: the
    module's browser may have served the other backend's server just before."""
    if "driver" in request.fixturenames:
        from tests.web.browser import console_errors, requested_urls

        browser = request.getfixturevalue("driver")
        console_errors(browser)
        requested_urls(browser)
