"""The worker pool under pressure, on a live server with a small memory budget and short
queues: cold starts, LRU eviction, a killed worker, a full queue."""

from __future__ import annotations

import asyncio
import os
import signal
import struct
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.hub.readkit import Owner, make_repo, new_owner
from tests.inference import kit
from tests.inference.kit import inference_server
from tests.live import Backend, LiveServer

TIMEOUT = 120


def tensor_bytes(safetensors: bytes) -> int:
    """Bytes of the tensors in a safetensors file: what the pool estimates for it."""
    (header,) = struct.unpack("<Q", safetensors[:8])
    return len(safetensors) - 8 - header


@pytest.fixture(scope="module")
def tiny_model() -> tuple[dict[str, bytes], dict[str, bytes]]:
    return kit.model_files("text-classification")


@pytest.fixture(scope="module")
def generator() -> tuple[dict[str, bytes], dict[str, bytes]]:
    return kit.model_files("text-generation")


@pytest.fixture(scope="module")
def small(backend: Backend, tiny_model: Any, generator: Any) -> Iterator[LiveServer]:
    """Room for two and a half tiny models; one request at a time; two may wait."""
    size = tensor_bytes(tiny_model[1]["model.safetensors"])
    assert tensor_bytes(generator[1]["model.safetensors"]) < 2.5 * size
    server = inference_server(
        backend,
        ATRIUM_INFERENCE_MEMORY_BUDGET=str(int(2.5 * size)),
        ATRIUM_INFERENCE_QUEUE_SIZE="2",
        ATRIUM_INFERENCE_MAX_BATCH_SIZE="1",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def owner(small: LiveServer) -> Owner:
    return new_owner(small)


@pytest.fixture(scope="module")
def admin(small: LiveServer) -> dict[str, str]:
    _, token = small.new_user(admin=True)
    return {"Authorization": f"Bearer {token}"}


def post(server: LiveServer, repo_id: str, body: Any) -> httpx.Response:
    return httpx.post(f"{server.url}/models/{repo_id}", json=body, timeout=TIMEOUT)


def workers(server: LiveServer, admin: dict[str, str]) -> list[dict[str, Any]]:
    answer = httpx.get(f"{server.url}/api/inference/status", headers=admin, timeout=10)
    assert answer.status_code == 200
    result: list[dict[str, Any]] = answer.json()["workers"]
    return result


def metric(server: LiveServer, name: str) -> float:
    text = server.metrics("/api/inference/metrics")
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def test_least_recently_used_model_is_evicted_when_the_budget_is_full(
    small: LiveServer, owner: Owner, admin: dict[str, str], tiny_model: Any
):
    names = ["lru-a", "lru-b", "lru-c"]
    for name in names:
        make_repo(owner, name, *tiny_model)
    for name in [*names, "lru-a", "lru-c"]:
        assert post(small, f"{owner.name}/{name}", {"inputs": "a"}).status_code == 200
    loaded = {m["key"].split("@")[0] for m in workers(small, admin)[0]["models"]}
    # a, b, c: c evicted a (least recently used); then a evicted b; c was used last.
    assert loaded == {f"{owner.name}/lru-a", f"{owner.name}/lru-c"}
    assert metric(small, "atrium_inference_evictions_total") >= 2
    assert "atrium_inference_evictions_total" in small.metrics()
    assert workers(small, admin)[0]["used"] <= workers(small, admin)[0]["budget"]


def test_cold_model_answers_503_with_an_estimate_then_serves(
    small: LiveServer, owner: Owner, tiny_model: Any
):
    make_repo(owner, "cold", *tiny_model)
    body = {"inputs": "a", "options": {"wait_for_model": False}}
    first = post(small, f"{owner.name}/cold", body)
    assert first.status_code == 503
    assert first.json()["estimated_time"] > 0
    assert "currently loading" in first.json()["error"]
    assert int(first.headers["Retry-After"]) >= 1
    deadline = time.monotonic() + 60
    while (answer := post(small, f"{owner.name}/cold", body)).status_code == 503:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert answer.status_code == 200


def test_by_default_a_request_waits_for_the_load(small: LiveServer, owner: Owner, tiny_model: Any):
    from huggingface_hub import InferenceClient

    make_repo(owner, "patient", *tiny_model)
    model = f"{small.url}/models/{owner.name}/patient"
    assert len(InferenceClient(model=model, timeout=TIMEOUT).text_classification("a")) == 2


def test_a_killed_worker_is_replaced_and_serving_resumes(
    small: LiveServer, owner: Owner, admin: dict[str, str], tiny_model: Any
):
    make_repo(owner, "survivor", *tiny_model)
    repo_id = f"{owner.name}/survivor"
    assert post(small, repo_id, {"inputs": "a"}).status_code == 200
    old_pid = workers(small, admin)[0]["pid"]
    os.kill(old_pid, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while (answer := post(small, repo_id, {"inputs": "a"})).status_code != 200:
        assert answer.status_code == 503, answer.text
        assert "Retry-After" in answer.headers
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert workers(small, admin)[0]["pid"] != old_pid
    assert metric(small, "atrium_inference_worker_restarts_total") >= 1


def test_a_full_queue_answers_429_with_retry_after(small: LiveServer, owner: Owner, generator: Any):
    make_repo(owner, "busy", *generator)
    repo_id = f"{owner.name}/busy"
    assert post(small, repo_id, {"inputs": "a"}).status_code == 200  # loaded
    body = {"inputs": "the cat", "parameters": {"max_new_tokens": 16}}

    async def flood() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            url = f"{small.url}/models/{repo_id}"
            return list(await asyncio.gather(*(client.post(url, json=body) for _ in range(24))))

    answers = asyncio.run(flood())
    statuses = {a.status_code for a in answers}
    assert statuses == {200, 429}, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert int(answer.headers["Retry-After"]) >= 1
    assert post(small, repo_id, {"inputs": "a"}).status_code == 200


def test_a_model_larger_than_the_budget_is_refused_clearly(small: LiveServer, owner: Owner):
    import json

    files, _ = kit.model_files("text-classification")
    config = json.loads(files["config.json"])
    config["hidden_size"], config["intermediate_size"] = 128, 256
    from transformers import BertConfig, BertForSequenceClassification

    with kit.temporary_folder() as folder:
        BertForSequenceClassification(BertConfig(**config)).save_pretrained(folder)
        big_files, big_lfs = kit.read_folder(folder)
    make_repo(owner, "huge", {**files, **big_files}, big_lfs)
    answer = post(small, f"{owner.name}/huge", {"inputs": "a"})
    assert answer.status_code == 400
    assert "ATRIUM_INFERENCE_MEMORY_BUDGET" in answer.json()["error"]
