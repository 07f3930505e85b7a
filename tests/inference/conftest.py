"""A live server with its inference pool, and tiny model repos pushed into it once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hub.readkit import Owner, make_repo, new_owner
from tests.inference import kit
from tests.live import Backend, LiveServer, start_server

TINY_TASKS = (
    "text-classification",
    "token-classification",
    "fill-mask",
    "question-answering",
    "zero-shot-classification",
    "text-generation",
    "summarization",
    "translation",
    "text2text-generation",
    "image-classification",
    "zero-shot-image-classification",
)
POOL_ENV = {
    "ATRIUM_INFERENCE_WORKERS": "1",
    "ATRIUM_INFERENCE_WORKER_THREADS": "1",
    "ATRIUM_INFERENCE_MAX_WAIT_MS": "2",
    "ATRIUM_INFERENCE_MAX_NEW_TOKENS": "16",
    "ATRIUM_INFERENCE_MAX_INPUT_TOKENS": "48",
}


def inference_server(backend: Backend, **env: str) -> LiveServer:
    return start_server(backend, {**POOL_ENV, **env})


@pytest.fixture(scope="module")
def live(backend: Backend) -> Iterator[LiveServer]:
    server = inference_server(backend)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def owner(live: LiveServer) -> Owner:
    return new_owner(live)


@pytest.fixture(scope="module")
def tiny(owner: Owner) -> dict[str, str]:
    """task -> repo id of a tiny model for it."""
    repos = {}
    for task in TINY_TASKS:
        name = "tiny-" + task
        files, lfs = kit.model_files(task)
        make_repo(owner, name, files, lfs)
        repos[task] = f"{owner.name}/{name}"
    return repos


@pytest.fixture(scope="module")
def minilm(owner: Owner) -> str:
    files, lfs = kit.minilm_files()
    make_repo(owner, "all-MiniLM-L6-v2", files, lfs)
    return f"{owner.name}/all-MiniLM-L6-v2"
