"""Blob store on a local folder: temp file, fsync, atomic rename; sharded key paths."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from app.blobs.base import STREAM_CHUNK, BlobInfo, BlobNotFound, HashingReader, validate_key
from app.config import ConfigError


class LocalBlobStore:
    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / ".tmp"

    def check(self) -> None:
        try:
            self.tmp.mkdir(parents=True, exist_ok=True)
            probe = self.tmp / ".probe"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(
                f"ATRIUM_STORAGE_URL: cannot write to {self.root} ({exc.strerror}); "
                "choose a writable folder"
            ) from None

    def path(self, key: str) -> Path:
        """`lfs/abcdef…` is stored at `lfs/ab/cd/abcdef…` so no folder grows unbounded."""
        head, _, name = validate_key(key).rpartition("/")
        base = self.root / head if head else self.root
        if len(name) >= 8:
            return base / name[:2] / name[2:4] / name
        return base / name

    def put(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None = None,
        size: int | None = None,
    ) -> BlobInfo:
        target = self.path(key)
        reader = HashingReader(sha256, size)
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    reader.feed(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digest = reader.verify()
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp_name, target)
            _fsync_dir(target.parent)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return BlobInfo(key=key, size=reader.count, sha256=digest)

    def open(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        try:
            handle = self.path(key).open("rb")
        except FileNotFoundError:
            raise BlobNotFound(f"object {key} not found") from None
        return _read_range(handle, start, length)

    def size(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def keys(self, prefix: str = "") -> Iterator[tuple[str, float]]:
        base = self.root / prefix if prefix else self.root
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d != ".tmp"]
            for name in filenames:
                full = Path(dirpath) / name
                rel = full.relative_to(self.root).parts
                logical = _unshard(rel)
                yield logical, full.stat().st_mtime

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        return None

    def local_path(self, key: str) -> Path | None:
        path = self.path(key)
        return path if path.exists() else None


def _unshard(parts: tuple[str, ...]) -> str:
    name = parts[-1]
    head = list(parts[:-1])
    if len(name) >= 8 and len(head) >= 2 and head[-2:] == [name[:2], name[2:4]]:
        head = head[:-2]
    return "/".join([*head, name])


def _read_range(handle: BinaryIO, start: int, length: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = length
        while remaining is None or remaining > 0:
            want = STREAM_CHUNK if remaining is None else min(STREAM_CHUNK, remaining)
            chunk = handle.read(want)
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
