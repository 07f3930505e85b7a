"""Slow clients (issue 16 §2): uploads that trickle or stall cost the server a socket, not the
threads that answer everyone else; a stalled or crawling upload is cut off with 408 and
stores nothing; one address sends a bounded number of bodies at once (429 beyond).

Uploads are raw sockets on signed LFS PUT URLs from the batch API, as git-lfs and
huggingface_hub send them, each from a loopback address of its own where it matters (the
per-address limit)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from huggingface_hub import HfApi

from app.lfs.streams import BLOCK
from tests.live import Backend, LiveServer, start_server
from tests.reliability.slowkit import Upload, signed_put, trickling

TRICKLERS = 64  # more than the request thread pool's 40 workers (the figure)
FAST_START = 20  # of which send a whole block first, so that their bodies reach a thread


@pytest.fixture(scope="module")
def patient(backend: Backend) -> Iterator[LiveServer]:
    """A server whose uploads may idle for a minute (the default)."""
    live = start_server(backend)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def strict(backend: Backend) -> Iterator[LiveServer]:
    """A server that cuts off an upload silent for 1.5 s, or slower than 4 KiB/s after that."""
    live = start_server(
        backend,
        extra_env={"ATRIUM_UPLOAD_IDLE_TIMEOUT": "1.5", "ATRIUM_UPLOAD_MIN_RATE": "4096"},
    )
    yield live
    live.stop()


def new_model(server: LiveServer) -> tuple[str, str]:
    name, token = server.new_user()
    repo_id = f"{name}/slow-{secrets.token_hex(3)}"
    HfApi(endpoint=server.url, token=token).create_repo(repo_id)
    return repo_id, token


def timed_get(url: str) -> tuple[int, float]:
    started = time.monotonic()
    status = httpx.get(url, timeout=60).status_code
    return status, time.monotonic() - started


def test_trickling_uploads_do_not_hold_up_anyone_else(patient: LiveServer) -> None:
    repo_id, token = new_model(patient)
    with trickling(
        patient, repo_id, token, TRICKLERS, fast_start=FAST_START, first=BLOCK, addresses=5
    ):
        time.sleep(1.0)  # every upload is in; the fast ones wait for (or hold) an upload thread
        for path in ("/health", f"/api/models/{repo_id}", f"/api/models/{repo_id}/tree/main"):
            took = sorted(timed_get(patient.url + path) for _ in range(3))
            assert all(status == 200 for status, _ in took), path
            # The median of three: one hiccup of a loaded test machine is not the server's.
            assert took[1][1] < 1.0, f"{path} took {took[1][1]:.1f} s behind slow uploads"


def test_one_address_sends_a_bounded_number_of_uploads_at_once(patient: LiveServer) -> None:
    repo_id, token = new_model(patient)
    held = []
    try:
        for _ in range(16):
            data = os.urandom(10_000)
            upload = Upload(signed_put(patient, repo_id, token, data), data, "127.0.0.9")
            upload.send(1)
            held.append(upload)
        time.sleep(0.5)
        data = os.urandom(10_000)
        href = signed_put(patient, repo_id, token, data)
        refused = Upload(href, data, "127.0.0.9")
        refused.send(len(data))
        answer = refused.answer()
        refused.close()
        assert answer.startswith(b"HTTP/1.1 429"), answer[:300]
        assert b"retry-after: 1\r\n" in answer.lower()
        assert b"16 uploads from your address are in progress" in answer
        # Another address is not affected, and the limit frees up as uploads end.
        assert httpx.put(href, content=data).status_code == 200
        for upload in held:
            upload.close()
        time.sleep(0.5)
        again = os.urandom(10_000)
        other = Upload(signed_put(patient, repo_id, token, again), again, "127.0.0.9")
        other.send(len(again))
        assert other.status() == 200
        other.close()
    finally:
        for upload in held:
            upload.close()


@pytest.mark.parametrize("how", ["stalls", "crawls"])
def test_a_stalled_or_crawling_upload_is_cut_off_and_stores_nothing(
    strict: LiveServer, how: str
) -> None:
    repo_id, token = new_model(strict)
    data = os.urandom(200_000)
    oid = hashlib.sha256(data).hexdigest()
    upload = Upload(signed_put(strict, repo_id, token, data), data)
    try:
        upload.send(1000)
        started = time.monotonic()
        if how == "crawls":
            with contextlib.suppress(OSError):
                while time.monotonic() < started + 20 and not upload.answered():
                    upload.send(200)  # 1 KiB/s: under the 4 KiB/s minimum
                    time.sleep(0.2)
        answer = upload.answer()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"Upload too slow" in answer
        assert time.monotonic() - started < 15
    finally:
        upload.close()
    # Nothing of it was kept: the object is still to be uploaded, and uploads whole.
    again = httpx.post(
        f"{strict.url}/{repo_id}.git/info/lfs/objects/batch",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.git-lfs+json"},
        json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
    ).json()["objects"][0]
    assert "upload" in again.get("actions", {}), again
    assert httpx.put(again["actions"]["upload"]["href"], content=data).status_code == 200
