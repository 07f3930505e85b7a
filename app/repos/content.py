"""One way to read content (ARCHITECTURE.md §5): any file of any revision, as a byte stream.

A file's bytes are carried one of three ways, and only this module knows which and where:

    git   a regular file: the git blob itself (`git/<sha1>`, zlib), small by construction
    lfs   a large file uploaded through LFS (or the git-lfs push path): `lfs/<sha256>`
    xet   a large file that came only through Xet: rebuilt from its xorbs by its recipe

`locate` turns a tree entry (or an LFS object id) into a `Content`, a small serialisable
value a worker on another machine can open without the database; `open_content` streams any
byte range of it. Every reader (downloads, LFS downloads, inference, the dataset viewer and
its conversions, pickle scans, fsck) goes through these two functions, so none can forget a
kind. Errors name the file, never a storage key.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.blobs import BlobNotFound, BlobStore
from app.blobs.keys import git_object_key, lfs_key, recipe_key
from app.errors import NotFound, RangeNotSatisfiable
from app.repos.gitobjects import open_object
from app.repos.models import LfsObject
from app.repos.service import FileEntry
from app.xet.reconstruction import stream_file

Kind = Literal["git", "lfs", "xet"]
PRESIGN_TTL_S = 3600  # long enough for a multi-GB download to start; the URL is per request


class ContentMissing(NotFound):
    """The index names content the store does not hold (a lost blob: `atrium fsck` finds it)."""

    default_message = "The content of this file is missing from storage"


@dataclass(frozen=True)
class Content:
    """Where one file's bytes are: `id` is the git blob SHA-1, the LFS SHA-256 or the Xet
    file hash, by `kind`; `sha256` is the LFS object id for large files (None for git)."""

    kind: Kind
    id: str
    size: int
    sha256: str | None = None


def xet_hash_of(session: Session, lfs_oid: str) -> str | None:
    """The Xet file holding this LFS object's content, if it came through (or was put in) Xet."""
    return session.scalar(select(LfsObject.xet_hash).where(LfsObject.oid == lfs_oid))


def locate(blobs: BlobStore, entry: FileEntry, session: Session | None = None) -> Content:
    """The content of one file entry of a tree. Without a session, the entry's `xet_hash` is
    trusted as it is (the tree row records it; a later Xet upload may have added one)."""
    if entry.lfs_oid is None:
        return Content("git", entry.oid, entry.size)
    xet_hash = entry.xet_hash
    if xet_hash is None and session is not None:
        xet_hash = xet_hash_of(session, entry.lfs_oid)
    return locate_lfs(blobs, entry.lfs_oid, entry.size, xet_hash)


def locate_lfs(blobs: BlobStore, oid: str, size: int, xet_hash: str | None) -> Content:
    """The content of an LFS object: its `lfs/` blob when stored, else its Xet file (it came
    only through Xet, and the store keeps no second copy)."""
    if xet_hash is not None and blobs.size(lfs_key(oid)) is None:
        return Content("xet", xet_hash, size, sha256=oid)
    return Content("lfs", oid, size, sha256=oid)


def open_content(
    blobs: BlobStore, content: Content, start: int = 0, length: int | None = None
) -> Iterator[bytes]:
    """Bytes [start, start+length) of the content (to its end when length is None), in the
    store's chunks: a large file is never read whole, never re-hashed (verified on upload)."""
    if start < 0 or (length is not None and length < 0):
        raise RangeNotSatisfiable(f"invalid byte range {start}+{length}")
    return _stream(blobs, content, start, length)


def read_content(blobs: BlobStore, content: Content) -> bytes:
    """The whole content, for small files (configs, cards, headers): callers bound the size."""
    return b"".join(open_content(blobs, content))


def local_file(blobs: BlobStore, content: Content) -> Path | None:
    """A file of the local store holding exactly these bytes, for readers that memory-map
    (pyarrow, duckdb); None on S3 or for content that is not stored whole."""
    if content.kind != "lfs":
        return None
    return blobs.local_path(lfs_key(content.id))


def download_url(blobs: BlobStore, content: Content, ttl_s: int = PRESIGN_TTL_S) -> str | None:
    """A presigned URL of the store for these bytes (S3), or None when the server must stream
    them itself (the local store, a git blob, a Xet file rebuilt from xorbs)."""
    if content.kind != "lfs":
        return None
    return blobs.presigned_url(lfs_key(content.id), ttl_s)


def is_stored(blobs: BlobStore, content: Content) -> bool:
    """Whether the store holds the content's blob (its recipe for a Xet file)."""
    key = {
        "git": git_object_key,
        "lfs": lfs_key,
        "xet": recipe_key,
    }[content.kind](content.id)
    return blobs.size(key) is not None


def _git_range(chunks: Iterator[bytes], start: int, length: int | None) -> Iterator[bytes]:
    """Bytes [start, start+length) of an inflating git blob: a large regular file streams."""
    end = None if length is None else start + length
    offset = 0
    for chunk in chunks:
        low, offset = offset, offset + len(chunk)
        if offset <= start:
            continue
        if end is not None and low >= end:
            return
        yield chunk[max(0, start - low) : None if end is None else end - low]


def _stream(blobs: BlobStore, content: Content, start: int, length: int | None) -> Iterator[bytes]:
    """Opened at once, so that a lost blob is an error before a response starts; a blob lost
    while streaming ends the stream with the same error."""
    try:
        if content.kind == "xet":
            stream = stream_file(blobs, content.id, start, length)
        elif content.kind == "git":
            stream = _git_range(open_object(blobs, content.id).chunks, start, length)
        else:
            stream = blobs.open(lfs_key(content.id), start, length)
    except BlobNotFound:
        raise ContentMissing() from None
    return _missing_as_error(stream)


def _missing_as_error(stream: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from stream
    except BlobNotFound:
        raise ContentMissing() from None
