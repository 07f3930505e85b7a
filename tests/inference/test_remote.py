"""The production path: `atrium worker` in its own process, reached by the API server over
an authenticated connection (ATRIUM_INFERENCE_REMOTE_WORKERS)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.hub.readkit import make_repo, new_owner
from tests.inference import kit
from tests.inference.kit import inference_server
from tests.live import ROOT, Backend, LiveServer, free_port


@pytest.fixture(scope="module")
def remote(backend: Backend) -> Iterator[LiveServer]:
    port = free_port()
    env = {**os.environ, **backend.settings_env(), "ATRIUM_INFERENCE_WORKER_THREADS": "1"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "worker", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = inference_server(backend, ATRIUM_INFERENCE_REMOTE_WORKERS=f"127.0.0.1:{port}")
    yield server
    server.stop()
    worker.terminate()
    worker.wait(10)


def test_api_server_serves_through_a_remote_worker(remote: LiveServer):
    owner = new_owner(remote)
    make_repo(owner, "remote-tc", *kit.model_files("text-classification"))
    url = f"{remote.url}/models/{owner.name}/remote-tc"
    deadline = time.monotonic() + 60
    while (answer := httpx.post(url, json={"inputs": "a"}, timeout=120)).status_code == 503:
        assert time.monotonic() < deadline  # the worker process may still be starting
        time.sleep(0.5)
    assert answer.status_code == 200, answer.text
    assert {r["label"] for r in answer.json()[0]} == set(kit.LABELS["text-classification"])


def test_atrium_config_lists_the_inference_settings(remote: LiveServer):
    shown = remote.cli("config").stdout
    for variable in ("ATRIUM_INFERENCE_MEMORY_BUDGET", "ATRIUM_INFERENCE_MAX_BATCH_SIZE",
                     "ATRIUM_RAY_ADDRESS"):  # fmt: skip
        assert variable in shown
