"""A live server with its inference pool, and tiny model repos pushed into it once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.hub.readkit import Owner, make_repo, new_owner
from tests.inference import kit
from tests.inference.kit import inference_server
from tests.live import Backend, LiveServer

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
