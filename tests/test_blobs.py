"""One conformance suite run against every BlobStore implementation (local folder and S3)."""

from __future__ import annotations

import hashlib
import os
import resource
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.blobs import BlobNotFound, BlobStore, HashMismatch
from app.blobs.base import exists, put_bytes, read_all
from app.blobs.local import LocalBlobStore
from app.blobs.s3 import S3BlobStore
from tests.live import AWS_ENV

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "local":
        local = LocalBlobStore(tmp_path / "blobs")
        local.check()
        yield local
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    os.environ.update(AWS_ENV)
    s3 = S3BlobStore(f"s3://conf-{secrets.token_hex(4)}/p", endpoint, create_bucket=True)
    s3.check()
    yield s3


def _pattern(total: int, chunk: int = MiB) -> Iterator[bytes]:
    block = hashlib.sha256(b"seed").digest() * (chunk // 32)
    sent = 0
    while sent < total:
        piece = block[: min(chunk, total - sent)]
        sent += len(piece)
        yield piece


@pytest.mark.parametrize("data", [b"", b"x", secrets.token_bytes(70_000)], ids=["0B", "1B", "70KB"])
def test_round_trip_small_objects(store: BlobStore, data: bytes) -> None:
    info = store.put("lfs/" + hashlib.sha256(data).hexdigest(), [data], sha256=None, size=len(data))
    assert info.size == len(data)
    assert info.sha256 == hashlib.sha256(data).hexdigest()
    assert read_all(store, info.key) == data
    assert store.size(info.key) == len(data)


def test_byte_ranges(store: BlobStore) -> None:
    data = bytes(range(256)) * 100
    put_bytes(store, "t/ranges", data)
    assert b"".join(store.open("t/ranges", 10, 5)) == data[10:15]
    assert b"".join(store.open("t/ranges", 25_000)) == data[25_000:]
    assert b"".join(store.open("t/ranges", 0, 0)) == b""


def test_missing_object_is_reported(store: BlobStore) -> None:
    assert store.size("t/missing") is None
    assert not exists(store, "t/missing")
    with pytest.raises(BlobNotFound):
        b"".join(store.open("t/missing"))


@pytest.mark.parametrize(
    ("declared_sha", "declared_size"),
    [("0" * 64, None), (None, 3), (None, 100)],
    ids=["wrong-sha256", "too-short", "too-long"],
)
def test_mismatched_upload_stores_nothing(
    store: BlobStore, declared_sha: str | None, declared_size: int | None
) -> None:
    with pytest.raises(HashMismatch):
        store.put("t/bad", [b"hello", b"world"], sha256=declared_sha, size=declared_size)
    assert store.size("t/bad") is None


def test_delete_and_list(store: BlobStore) -> None:
    put_bytes(store, "gc/aaaaaaaaaa", b"1")
    put_bytes(store, "gc/bbbbbbbbbb", b"2")
    assert sorted(k for k, _ in store.keys("gc")) == ["gc/aaaaaaaaaa", "gc/bbbbbbbbbb"]
    store.delete("gc/aaaaaaaaaa")
    assert sorted(k for k, _ in store.keys("gc")) == ["gc/bbbbbbbbbb"]


@pytest.mark.slow
def test_200mb_streams_with_bounded_memory(store: BlobStore) -> None:
    total = 200 * MiB
    expected = hashlib.sha256()
    for piece in _pattern(total):
        expected.update(piece)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info = store.put("lfs/big", _pattern(total), sha256=expected.hexdigest(), size=total)
    assert info.size == total
    got = hashlib.sha256()
    for piece in store.open("lfs/big"):
        got.update(piece)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert got.hexdigest() == expected.hexdigest()
    assert grown_mib < 120, f"peak memory grew by {grown_mib:.0f} MiB while streaming 200 MiB"
    with pytest.raises(HashMismatch):
        store.put("lfs/big2", _pattern(total), sha256="1" * 64, size=total)
    assert store.size("lfs/big2") is None
