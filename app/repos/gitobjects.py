"""Git objects in the blob store, encoded and hashed by dulwich.

Each object is stored once, as a zlib-compressed loose object (the `.git/objects` format),
under `git/<sha1>`. Being content-addressed, an object shared by many repos is stored once.
"""

from __future__ import annotations

import io
import re
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dulwich.objects import Blob, ShaFile

from app.blobs import BlobStore
from app.blobs.base import read_all
from app.blobs.keys import git_object_key

EMPTY_TREE_SHA = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
LFS_SPEC = "https://git-lfs.github.com/spec/v1"
OID_RE = re.compile(r"^[0-9a-f]{64}$")  # an LFS object id: a sha256, as git-lfs writes it
LFS_POINTER_MAX = 1024  # git-lfs refuses to parse pointer files larger than this
_POINTER_RE = re.compile(
    rb"^version https://git-lfs\.github\.com/spec/v1\n"
    rb"oid sha256:(?P<oid>[0-9a-f]{64})\n"
    rb"size (?P<size>[0-9]+)\n"
    rb"(?:[a-z0-9.-]+ [^\n]*\n)*$"
)

MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120000
MODE_TREE = 0o040000
MODE_GITLINK = 0o160000


@dataclass(frozen=True)
class LfsPointer:
    oid: str
    size: int


def store_objects(blobs: BlobStore, objects: Iterable[ShaFile]) -> None:
    """Write objects that are not stored yet; each write is atomic and durable."""
    for obj in objects:
        key = git_object_key(obj.id.decode())
        if blobs.size(key) is None:
            blobs.put(key, obj.as_legacy_object_chunks())


INFLATE_STEP = 1024 * 1024  # most bytes one inflate step may produce (bounds its memory)
_HEADER_MAX = 32  # "blob 1234567890\0" and the like


@dataclass(frozen=True)
class LooseObject:
    """A stored object opened for streaming: its type, declared size, and its content as
    it inflates (ValueError when it is cut short or is not zlib)."""

    type_name: str
    size: int
    chunks: Iterator[bytes]


def _inflate(chunks: Iterator[bytes]) -> Iterator[bytes]:
    inflater = zlib.decompressobj()
    try:
        for chunk in chunks:
            data = chunk
            while data:
                out = inflater.decompress(data, INFLATE_STEP)
                if out:
                    yield out
                data = inflater.unconsumed_tail
        if rest := inflater.flush():
            yield rest
    except zlib.error as exc:
        raise ValueError(f"not a zlib stream: {exc}") from None
    if not inflater.eof:
        raise ValueError("the object is cut short")


def open_object(blobs: BlobStore, sha: str) -> LooseObject:
    """A stored object as a stream, without holding it whole (a large regular file)."""
    stream = _inflate(iter(blobs.open(git_object_key(sha))))
    head = b""
    for piece in stream:
        head += piece
        if b"\0" in head[: _HEADER_MAX + 1] or len(head) > _HEADER_MAX:
            break
    header, nul, first = head.partition(b"\0")
    type_name, _, size = header.partition(b" ")
    if not nul or type_name not in (b"blob", b"tree", b"commit", b"tag") or not size.isdigit():
        raise ValueError("not a git object")

    def content() -> Iterator[bytes]:
        if first:
            yield first
        yield from stream

    return LooseObject(type_name.decode(), int(size), content())


def load_object(blobs: BlobStore, sha: str) -> ShaFile:
    return ShaFile.from_file(io.BytesIO(read_all(blobs, git_object_key(sha))))


def lfs_pointer_text(oid: str, size: int) -> bytes:
    return f"version {LFS_SPEC}\noid sha256:{oid}\nsize {size}\n".encode()


def lfs_pointer_blob(oid: str, size: int) -> Blob:
    return Blob.from_string(lfs_pointer_text(oid, size))


def parse_lfs_pointer(data: bytes) -> LfsPointer | None:
    if len(data) > LFS_POINTER_MAX:
        return None
    match = _POINTER_RE.match(data)
    if match is None:
        return None
    return LfsPointer(oid=match["oid"].decode(), size=int(match["size"]))
