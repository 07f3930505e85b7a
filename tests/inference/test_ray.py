"""ATRIUM_INFERENCE_BACKEND=ray: the same endpoints served by a Ray Serve deployment, here on a
local Ray instance on CPU started by the API process (ATRIUM_RAY_ADDRESS=local)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from tests.hub.readkit import make_repo, new_owner
from tests.inference import kit
from tests.inference.kit import inference_server
from tests.live import Backend, LiveServer

pytest.importorskip("ray.serve", reason="the ray backend is optional: pip install ray[serve]")


@pytest.fixture(scope="module")
def on_ray(backend: Backend) -> Iterator[LiveServer]:
    server = inference_server(
        backend,
        ATRIUM_INFERENCE_BACKEND="ray",
        ATRIUM_RAY_ADDRESS="local",
        ATRIUM_INFERENCE_RAY_MAX_REPLICAS="1",
        RAY_ENABLE_UV_RUN_RUNTIME_ENV="0",
    )
    yield server
    server.stop()


def test_models_are_served_by_ray_serve_replicas(on_ray: LiveServer):
    owner = new_owner(on_ray)
    make_repo(owner, "ray-tc", *kit.model_files("text-classification"))
    make_repo(owner, "ray-gen", *kit.model_files("text-generation"))
    url = f"{on_ray.url}/models/{owner.name}"
    deadline = time.monotonic() + 300
    body = {"inputs": "a"}
    while (answer := httpx.post(f"{url}/ray-tc", json=body, timeout=300)).is_server_error:
        assert answer.status_code == 503 and time.monotonic() < deadline
        time.sleep(1)
    assert answer.status_code == 200, answer.text
    assert {r["label"] for r in answer.json()[0]} == set(kit.LABELS["text-classification"])
    generated = httpx.post(f"{url}/ray-gen", json={"inputs": "the cat"}, timeout=300)
    assert generated.status_code == 200 and "generated_text" in generated.json()[0]
    bad = httpx.post(f"{url}/ray-tc", json={"inputs": "the " * 60}, timeout=300)
    assert bad.status_code == 400 and "too long" in bad.json()["error"]
    _, admin = on_ray.new_user(admin=True)
    status = httpx.get(
        f"{on_ray.url}/api/inference/status", headers={"Authorization": f"Bearer {admin}"}
    ).json()
    assert [w["device"] for w in status["workers"]] == ["ray"]  # no local worker was started
