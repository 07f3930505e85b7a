"""Xorbs (xet-protocol.md §5.1): a run of `[8-byte header][payload]` chunks, as uploaded.

`parse_xorb` decodes and hashes every chunk: the server never trusts the hash in the URL or a
client footer, it recomputes the xorb hash from the content. The result keeps, per chunk, the
offsets that reconstruction answers and ranged reads need.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass

import lz4.frame
import numpy as np

from app.errors import BadRequest
from app.xet import hashing

HEADER_LEN = 8
MAX_RAW_CHUNK = 128 * 1024
MAX_COMPRESSED_CHUNK = 256 * 1024
MAX_CHUNKS = 8192
MAX_RAW_XORB = 64 * 1024 * 1024
MAX_XORB_BODY = MAX_RAW_XORB + 1024 * 1024  # compressed data can be slightly larger than raw
FOOTER_MAGIC = b"XETBLOB"

SCHEME_NONE = 0
SCHEME_LZ4 = 1
SCHEME_BG4_LZ4 = 2

# One entry of the stored chunk index: hash, raw length, compressed [start, end) in the xorb.
INDEX_ENTRY = struct.Struct("<32sIII")


class InvalidXorb(BadRequest):
    default_message = "Invalid xorb"


@dataclass(frozen=True)
class ChunkRef:
    hash: bytes
    raw_len: int
    start: int  # offset of the chunk header in the stored xorb
    end: int  # offset just past its payload


@dataclass(frozen=True)
class Xorb:
    hash: bytes
    chunks: list[ChunkRef]
    body: bytes  # chunk bytes only, any client footer stripped

    @property
    def raw_bytes(self) -> int:
        return sum(c.raw_len for c in self.chunks)


def byte_group4(data: bytes) -> bytes:
    """Bytes 0,4,8.. then 1,5,9.. then 2,6,.. then 3,7,..: what BG4 compresses."""
    arr = np.frombuffer(data, dtype=np.uint8)
    return b"".join(arr[i::4].tobytes() for i in range(4))


def byte_ungroup4(grouped: bytes) -> bytes:
    n = len(grouped)
    out = np.empty(n, dtype=np.uint8)
    src = np.frombuffer(grouped, dtype=np.uint8)
    pos = 0
    for i in range(4):
        count = n // 4 + (1 if i < n % 4 else 0)
        out[i::4] = src[pos : pos + count]
        pos += count
    return out.tobytes()


def decode_payload(scheme: int, payload: bytes | memoryview, raw_len: int) -> bytes | memoryview:
    """Decompress one chunk; InvalidXorb for an unknown scheme or a wrong decoded length."""
    try:
        if scheme == SCHEME_NONE:
            data = payload
        elif scheme == SCHEME_LZ4:
            data = _inflate(payload, raw_len)
        elif scheme == SCHEME_BG4_LZ4:
            data = byte_ungroup4(_inflate(payload, raw_len))
        else:
            raise InvalidXorb(f"unknown chunk compression scheme {scheme}")
    except RuntimeError as exc:  # lz4 reports corrupt frames as RuntimeError
        raise InvalidXorb(f"chunk does not decompress: {exc}") from None
    if len(data) != raw_len:
        raise InvalidXorb(f"chunk decodes to {len(data)} bytes, its header says {raw_len}")
    return data


def _inflate(payload: bytes | memoryview, raw_len: int) -> bytes:
    """At most raw_len + 1 bytes of an LZ4 frame: a frame that claims a small chunk but
    inflates to far more is refused having allocated little (the length check follows)."""
    return bytes(lz4.frame.LZ4FrameDecompressor().decompress(payload, max_length=raw_len + 1))


def encode_chunk(data: bytes, scheme: int = SCHEME_LZ4) -> bytes:
    """One chunk as the client writes it (for tests and server-made xorbs)."""
    if scheme == SCHEME_LZ4:
        payload = lz4.frame.compress(data)
    elif scheme == SCHEME_BG4_LZ4:
        payload = lz4.frame.compress(byte_group4(data))
    else:
        payload = data
    return _header(len(payload), scheme, len(data)) + payload


def _header(compressed_len: int, scheme: int, raw_len: int) -> bytes:
    return (
        bytes([0])
        + compressed_len.to_bytes(3, "little")
        + bytes([scheme])
        + raw_len.to_bytes(3, "little")
    )


def read_header(buf: bytes | memoryview, offset: int) -> tuple[int, int, int]:
    """(compressed_len, scheme, raw_len) of the chunk header at offset, checked."""
    if offset + HEADER_LEN > len(buf):
        raise InvalidXorb(f"truncated chunk header at byte {offset}")
    head = bytes(buf[offset : offset + HEADER_LEN])
    if head[0] != 0:
        raise InvalidXorb(f"unknown chunk header version {head[0]} at byte {offset}")
    compressed_len = int.from_bytes(head[1:4], "little")
    raw_len = int.from_bytes(head[5:8], "little")
    if raw_len > MAX_RAW_CHUNK or compressed_len > MAX_COMPRESSED_CHUNK:
        raise InvalidXorb(f"chunk at byte {offset} is larger than the format allows")
    if offset + HEADER_LEN + compressed_len > len(buf):
        raise InvalidXorb(f"chunk at byte {offset} runs past the end of the xorb")
    return compressed_len, head[4], raw_len


def _chunks_end(body: bytes) -> int:
    """Where chunk data ends: the start of a legacy `XETBLOB` footer, else the body's end."""
    offset = 0
    while offset < len(body):
        if body[offset : offset + len(FOOTER_MAGIC)] == FOOTER_MAGIC:
            return offset
        compressed_len, _, _ = read_header(body, offset)
        offset += HEADER_LEN + compressed_len
    return offset


def parse_xorb(body: bytes, expected_hash: bytes) -> Xorb:
    """Decode and hash every chunk, then check the xorb hash; InvalidXorb on any lie."""
    if len(body) > MAX_XORB_BODY:
        raise InvalidXorb(f"xorb of {len(body)} bytes exceeds the {MAX_XORB_BODY}-byte limit")
    end = _chunks_end(body)
    view = memoryview(body)
    chunks: list[ChunkRef] = []
    offset = 0
    while offset < end:
        compressed_len, scheme, raw_len = read_header(view, offset)
        payload_start = offset + HEADER_LEN
        data = decode_payload(scheme, view[payload_start : payload_start + compressed_len], raw_len)
        chunk_end = payload_start + compressed_len
        chunks.append(ChunkRef(hashing.chunk_hash(data), raw_len, offset, chunk_end))
        offset = chunk_end
    if not chunks:
        raise InvalidXorb("xorb has no chunks")
    if len(chunks) > MAX_CHUNKS or sum(c.raw_len for c in chunks) > MAX_RAW_XORB:
        raise InvalidXorb("xorb holds more chunks or bytes than the format allows")
    actual = hashing.xorb_hash([(c.hash, c.raw_len) for c in chunks])
    if actual != expected_hash:
        raise InvalidXorb(
            f"xorb content hashes to {hashing.to_hex(actual)}, not {hashing.to_hex(expected_hash)}"
        )
    return Xorb(actual, chunks, body[:end])


def pack_index(chunks: Iterable[ChunkRef]) -> bytes:
    return b"".join(INDEX_ENTRY.pack(c.hash, c.raw_len, c.start, c.end) for c in chunks)


def unpack_index(blob: bytes) -> list[ChunkRef]:
    return [ChunkRef(*fields) for fields in INDEX_ENTRY.iter_unpack(blob)]


def decode_chunks(data: bytes) -> Iterable[bytes]:
    """The raw bytes of each chunk in a run of stored chunks (already verified on upload)."""
    offset = 0
    while offset < len(data):
        compressed_len, scheme, raw_len = read_header(data, offset)
        start = offset + HEADER_LEN
        raw = decode_payload(scheme, data[start : start + compressed_len], raw_len)
        yield raw if isinstance(raw, bytes) else bytes(raw)
        offset = start + compressed_len
