"""The BlobStore protocol: write-once objects addressed by key, streamed in and out.

Keys are slash-separated logical names chosen by the caller (`lfs/<sha256>`, `git/<sha1>`,
`xet/xorbs/<hash>`); implementations map them to files or S3 keys. A `put` that declares a
sha256 or size verifies it while streaming and stores nothing on a mismatch, so a reader that
finds a key may trust its content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.errors import BadRequest, NotFound

MiB = 1024 * 1024
STREAM_CHUNK = 1 * MiB  # read size when streaming an object out


class BlobNotFound(NotFound):
    default_message = "Object not found in storage"


class HashMismatch(BadRequest):
    default_message = "Uploaded content does not match its declared hash or size"


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    sha256: str


class BlobStore(Protocol):
    def put(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None = None,
        size: int | None = None,
    ) -> BlobInfo:
        """Store the concatenated chunks under key, verifying the declared sha256/size."""
        ...

    def open(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream `length` bytes (all when None) from offset `start`; BlobNotFound if absent."""
        ...

    def size(self, key: str) -> int | None:
        """Size of the object, or None when it does not exist."""
        ...

    def delete(self, key: str) -> None: ...

    def keys(self, prefix: str = "") -> Iterator[tuple[str, float]]:
        """Every key under prefix with its modification time (unix seconds), for gc."""
        ...

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        """A URL that reads the object without credentials, or None if the store has none."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The file holding the object when it lives on local disk (for zero-copy sends)."""
        ...

    def check(self) -> None:
        """Raise ConfigError naming the setting when the store does not answer."""
        ...


def exists(store: BlobStore, key: str) -> bool:
    return store.size(key) is not None


def read_all(store: BlobStore, key: str) -> bytes:
    """Read a small object fully (git objects, shards); never use for user files."""
    return b"".join(store.open(key))


def put_bytes(store: BlobStore, key: str, data: bytes) -> BlobInfo:
    return store.put(key, [data], size=len(data))


class HashingReader:
    """Feeds chunks through sha256 and a byte counter, then checks the declared values."""

    def __init__(self, sha256: str | None, size: int | None):
        self.expected_sha256 = sha256.lower() if sha256 else None
        self.expected_size = size
        self.hasher = hashlib.sha256()
        self.count = 0

    def feed(self, chunk: bytes) -> None:
        self.count += len(chunk)
        if self.expected_size is not None and self.count > self.expected_size:
            raise HashMismatch(f"content is larger than the declared size {self.expected_size}")
        self.hasher.update(chunk)

    def verify(self) -> str:
        digest = self.hasher.hexdigest()
        if self.expected_size is not None and self.count != self.expected_size:
            raise HashMismatch(
                f"content has {self.count} bytes but the declared size is {self.expected_size}"
            )
        if self.expected_sha256 is not None and digest != self.expected_sha256:
            raise HashMismatch(
                f"content sha256 is {digest} but the declared sha256 is {self.expected_sha256}"
            )
        return digest


def validate_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"invalid blob key {key!r}")
    return key
