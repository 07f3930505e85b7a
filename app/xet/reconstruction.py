"""File recipes and reconstruction (xet-protocol.md §4.1).

A recipe is what the server keeps of a registered file: its terms in order, each with the
per-chunk raw lengths and compressed byte ranges of the xorb slice it uses. It is written to
the blob store once (`xet/files/<hash>`), so both the CAS answers and the plain-bytes download
of a Xet file read it without the database.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

from app.blobs import BlobStore
from app.blobs.base import read_all
from app.blobs.keys import recipe_key, xorb_key
from app.errors import RangeNotSatisfiable
from app.xet import hashing
from app.xet.xorb import decode_chunks

TERM_HEAD = struct.Struct("<32sII")
CHUNK = struct.Struct("<III")  # raw_len, compressed start, compressed end (in the xorb)
READ_WINDOW = 8 * 1024 * 1024  # compressed bytes read at once when streaming plain bytes
RECIPE_CACHE = 32  # recipes kept per process (12 bytes per chunk: ~100 KB for 500 MB)


@dataclass(frozen=True)
class Slice:
    """Chunks [start, end) of one xorb: `chunks[i]` describes chunk `start + i`."""

    xorb: bytes
    start: int
    end: int
    chunks: tuple[tuple[int, int, int], ...]

    @property
    def raw_len(self) -> int:
        return sum(c[0] for c in self.chunks)

    @property
    def byte_range(self) -> tuple[int, int]:
        """Inclusive byte range of these chunks in the stored xorb."""
        return self.chunks[0][1], self.chunks[-1][2] - 1

    def sub(self, first: int, last: int) -> Slice:
        """Chunks [first, last) counted from this slice's start."""
        return Slice(self.xorb, self.start + first, self.start + last, self.chunks[first:last])


def pack_recipe(terms: list[Slice]) -> bytes:
    out = []
    for term in terms:
        out.append(TERM_HEAD.pack(term.xorb, term.start, term.end))
        out.extend(CHUNK.pack(*c) for c in term.chunks)
    return b"".join(out)


def unpack_recipe(data: bytes) -> list[Slice]:
    terms = []
    pos = 0
    while pos < len(data):
        xorb, start, end = TERM_HEAD.unpack_from(data, pos)
        pos += TERM_HEAD.size
        n = end - start
        chunks = tuple(CHUNK.unpack_from(data, pos + i * CHUNK.size) for i in range(n))
        pos += n * CHUNK.size
        terms.append(Slice(xorb, start, end, chunks))
    return terms


def load_recipe(blobs: BlobStore, file_hex: str) -> list[Slice]:
    """A file's recipe; cached, since it never changes and a client reading a large file asks
    for one range after another."""
    return list(_cached_recipe(cast(Hashable, blobs), file_hex))


@lru_cache(maxsize=RECIPE_CACHE)
def _cached_recipe(blobs: Hashable, file_hex: str) -> tuple[Slice, ...]:
    return tuple(unpack_recipe(read_all(cast(BlobStore, blobs), recipe_key(file_hex))))


def parse_range_header(header: str | None, size: int) -> tuple[int, int]:
    """`bytes=a-b` / `a-` / `-n` -> half-open [start, end) clamped to size; 416 past the end
    (except byte 0 of an empty file). The client sends a range even when it runs past EOF."""
    if not header or not header.startswith("bytes="):
        return 0, size
    first, _, last = header[len("bytes=") :].split(",")[0].strip().partition("-")
    if not first:
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    if start >= size and not (size == 0 and start == 0):
        raise RangeNotSatisfiable(
            f"Range starts past the end of the file ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        )
    return start, max(end, start)


def slice_range(terms: list[Slice], start: int, end: int) -> tuple[int, list[Slice]]:
    """The slices covering file bytes [start, end), trimmed to whole chunks, and the offset of
    `start` inside the first one (§4.1 steps 3 and 4)."""
    out: list[Slice] = []
    offset_into_first = 0
    pos = 0
    for term in terms:
        term_end = pos + term.raw_len
        if term_end <= start or pos >= end:
            pos = term_end
            continue
        first, cum = 0, pos
        while cum + term.chunks[first][0] <= start:
            cum += term.chunks[first][0]
            first += 1
        if not out:
            offset_into_first = start - cum
        last, tail = len(term.chunks), term_end
        while last - 1 > first and tail - term.chunks[last - 1][0] >= end:
            tail -= term.chunks[last - 1][0]
            last -= 1
        out.append(term.sub(first, last))
        pos = term_end
    return offset_into_first, out


Span = tuple[int, int, int, int]  # chunk start, chunk end (excl.), byte start, byte end (incl.)


def merged_ranges(slices: list[Slice]) -> dict[bytes, list[Span]]:
    """Per xorb: the merged fetch ranges covering these slices."""
    by_xorb: dict[bytes, list[Span]] = {}
    for s in sorted(slices, key=lambda s: (s.xorb, s.start)):
        b0, b1 = s.byte_range
        ranges = by_xorb.setdefault(s.xorb, [])
        if ranges and s.start <= ranges[-1][1]:
            c0, c1, r0, r1 = ranges[-1]
            ranges[-1] = (c0, max(c1, s.end), r0, max(r1, b1))
        else:
            ranges.append((s.start, s.end, b0, b1))
    return by_xorb


def term_json(s: Slice) -> dict[str, object]:
    return {
        "hash": hashing.to_hex(s.xorb),
        "unpacked_length": s.raw_len,
        "range": {"start": s.start, "end": s.end},
    }


def stream_file(blobs: BlobStore, file_hex: str, start: int, length: int | None) -> Iterator[bytes]:
    """Plain bytes [start, start+length) of a Xet file, decoded from its xorbs window by
    window: memory stays bounded by READ_WINDOW whatever the file size."""
    terms = load_recipe(blobs, file_hex)
    size = sum(t.raw_len for t in terms)
    end = size if length is None else min(start + length, size)
    skip, slices = slice_range(terms, start, end)
    remaining = end - start
    for piece in slices:
        for window in _windows(piece):
            b0, b1 = window.byte_range
            data = read_all_range(blobs, xorb_key(hashing.to_hex(window.xorb)), b0, b1 - b0 + 1)
            for raw in decode_chunks(data):
                if skip >= len(raw):
                    skip -= len(raw)
                    continue
                out = raw[skip : skip + remaining]
                skip = 0
                remaining -= len(out)
                yield out
                if remaining <= 0:
                    return


def _windows(piece: Slice) -> Iterator[Slice]:
    first = 0
    while first < len(piece.chunks):
        last = first + 1
        while (
            last < len(piece.chunks)
            and piece.chunks[last][2] - piece.chunks[first][1] <= READ_WINDOW
        ):
            last += 1
        yield piece.sub(first, last)
        first = last


def read_all_range(blobs: BlobStore, key: str, start: int, length: int) -> bytes:
    return b"".join(blobs.open(key, start, length))
