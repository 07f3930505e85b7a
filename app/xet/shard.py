"""Shards (xet-protocol.md §5.2, §5.3): the file and xorb sections a client uploads, and the
dedup answers the server builds.

Every integer is little-endian and every entry 48 bytes. Uploaded shards carry no footer; the
server reads the file section in full (terms, verification hashes, sha256) and only the list of
xorbs from the xorb section, which it cross-checks against its own index.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from app.errors import BadRequest
from app.xet import hashing
from app.xet.xorb import ChunkRef

MAGIC = bytes.fromhex("48465265706f4d6574614461746100556967456a7b815783a5bdd95ccdd14aa9")
VERSION = 2
HEADER = struct.Struct("<32sQQ")
ENTRY_LEN = 48
BOOKEND = b"\xff" * 32 + b"\x00" * 16
FILE_HEADER = struct.Struct("<32sIIQ")
FILE_TERM = struct.Struct("<32sIIII")
XORB_HEADER = struct.Struct("<32sIIII")
XORB_CHUNK = struct.Struct("<32sIIII")
FOOTER = struct.Struct("<9Q32sQQ48s4Q")  # 200 bytes
FOOTER_VERSION = 1
FLAG_VERIFICATION = 0x80000000
FLAG_METADATA_EXT = 0x40000000
CHUNK_FLAG_GLOBAL_DEDUP = 0x80000000
MAX_SHARD_BODY = 64 * 1024 * 1024


class InvalidShard(BadRequest):
    default_message = "Invalid shard"


@dataclass(frozen=True)
class Term:
    """Chunks [start, end) of one xorb, `unpacked` bytes once decoded."""

    xorb: bytes
    unpacked: int
    start: int
    end: int
    verification: bytes | None = None

    def pack(self) -> bytes:
        return FILE_TERM.pack(self.xorb, 0, self.unpacked, self.start, self.end)


@dataclass
class FileEntry:
    hash: bytes
    terms: list[Term] = field(default_factory=list)
    sha256: bytes | None = None  # as stored: each 8-byte group reversed

    @property
    def size(self) -> int:
        return sum(t.unpacked for t in self.terms)

    @property
    def sha256_hex(self) -> str | None:
        return hashing.to_hex(self.sha256) if self.sha256 is not None else None


@dataclass
class Shard:
    files: list[FileEntry]
    xorbs: list[bytes]


class _Reader:
    """Sequential 48-byte entries with bounds checks that end in InvalidShard."""

    def __init__(self, body: bytes):
        self.body = body
        self.pos = 0

    def take(self, size: int = ENTRY_LEN) -> bytes:
        if self.pos + size > len(self.body):
            raise InvalidShard("shard is truncated")
        out = self.body[self.pos : self.pos + size]
        self.pos += size
        return out

    def at_bookend(self) -> bool:
        return self.body[self.pos : self.pos + ENTRY_LEN] == BOOKEND


def parse_shard(body: bytes) -> Shard:
    """The file entries and xorb list of an uploaded shard; InvalidShard on a bad layout."""
    if len(body) > MAX_SHARD_BODY:
        raise InvalidShard("shard is larger than the server accepts")
    reader = _Reader(body)
    magic, version, _footer_size = HEADER.unpack(reader.take())
    if magic != MAGIC or version != VERSION:
        raise InvalidShard("not a version 2 xet shard (bad magic or version)")
    files: list[FileEntry] = []
    while not reader.at_bookend():
        files.append(_read_file(reader))
    reader.take()
    xorbs: list[bytes] = []
    while not reader.at_bookend():
        xorb_hash, _flags, n_chunks, _raw, _stored = XORB_HEADER.unpack(reader.take())
        reader.take(ENTRY_LEN * n_chunks)
        xorbs.append(xorb_hash)
    reader.take()
    return Shard(files, xorbs)


def _read_file(reader: _Reader) -> FileEntry:
    file_hash, flags, n_terms, _ = FILE_HEADER.unpack(reader.take())
    terms = []
    for _ in range(n_terms):
        xorb_hash, _flags, unpacked, start, end = FILE_TERM.unpack(reader.take())
        terms.append(Term(xorb_hash, unpacked, start, end))
    if flags & FLAG_VERIFICATION:
        terms = [Term(t.xorb, t.unpacked, t.start, t.end, reader.take()[:32]) for t in terms]
    sha256 = reader.take()[:32] if flags & FLAG_METADATA_EXT else None
    return FileEntry(file_hash, terms, sha256)


def build_upload_shard(files: list[FileEntry], xorbs: dict[bytes, list[ChunkRef]]) -> bytes:
    """A shard as hf_xet uploads it (no footer): used by tests and server-side conversion."""
    out = [HEADER.pack(MAGIC, VERSION, 0)]
    for entry in files:
        flags = FLAG_VERIFICATION | (FLAG_METADATA_EXT if entry.sha256 is not None else 0)
        out.append(FILE_HEADER.pack(entry.hash, flags, len(entry.terms), 0))
        out.extend(t.pack() for t in entry.terms)
        out.extend((t.verification or bytes(32)) + bytes(16) for t in entry.terms)
        if entry.sha256 is not None:
            out.append(entry.sha256 + bytes(16))
    out.append(BOOKEND)
    for xorb_hash, chunks in xorbs.items():
        out.append(_xorb_section(xorb_hash, chunks, lambda h: h))
    out.append(BOOKEND)
    return b"".join(out)


def _xorb_section(
    xorb_hash: bytes, chunks: list[ChunkRef], rename: Callable[[bytes], bytes]
) -> bytes:
    """One xorb's header and chunk list, each chunk hash passed through rename."""
    raw_total = sum(c.raw_len for c in chunks)
    stored = chunks[-1].end if chunks else 0
    out = [XORB_HEADER.pack(xorb_hash, 0, len(chunks), raw_total, stored)]
    offset = 0
    for chunk in chunks:
        out.append(XORB_CHUNK.pack(rename(chunk.hash), offset, chunk.raw_len, 0, 0))
        offset += chunk.raw_len
    return b"".join(out)


def build_dedup_answer(
    xorbs: dict[bytes, list[ChunkRef]], key: bytes, expiry_s: int, now: int | None = None
) -> bytes:
    """The global-dedup answer: no files, the xorbs holding the chunk with every chunk hash
    keyed by `key` (so only a client that holds a chunk recognizes it), and the footer."""
    now = int(time.time()) if now is None else now
    head = HEADER.pack(MAGIC, VERSION, FOOTER.size) + BOOKEND
    xorb_offset = len(head)
    body = b"".join(
        _xorb_section(h, chunks, lambda c: hashing.keyed(key, c)) for h, chunks in xorbs.items()
    )
    footer_offset = xorb_offset + len(body) + len(BOOKEND)
    stored = sum(c[-1].end for c in xorbs.values() if c)
    raw = sum(ch.raw_len for c in xorbs.values() for ch in c)
    footer = FOOTER.pack(
        FOOTER_VERSION,
        HEADER.size,  # file_info_off
        xorb_offset,
        footer_offset,  # empty lookup tables sit at the footer
        0,
        footer_offset,
        0,
        footer_offset,
        0,
        key,
        now,
        now + expiry_s,
        bytes(48),
        stored,
        raw,
        stored,
        footer_offset,
    )
    return head + body + BOOKEND + footer
