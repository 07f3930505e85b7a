"""Byte ranges of a multi-term file: the slices a reconstruction answer names, and the plain
bytes the server streams to non-Xet clients, against the file itself."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from app.blobs.local import LocalBlobStore
from app.errors import RangeNotSatisfiable
from app.xet import hashing
from app.xet.reconstruction import (
    Slice,
    merged_ranges,
    pack_recipe,
    parse_range_header,
    recipe_key,
    slice_range,
    stream_file,
    unpack_recipe,
    xorb_key,
)
from app.xet.xorb import decode_chunks
from tests.xet.xetkit import CHUNK, BuiltFile, build_file

FILE = "cd" * 32


def term(built: BuiltFile, start: int, end: int) -> Slice:
    chunks = tuple((c.raw_len, c.start, c.end) for c in built.refs[start:end])
    return Slice(built.xorb_hash, start, end, chunks)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[LocalBlobStore, list[Slice], bytes]:
    """A file made of three terms: chunks 1-4 of xorb A, all of xorb B, chunks 0-2 of A."""
    blobs = LocalBlobStore(Path(tmp_path_factory.mktemp("blobs")))
    a, b = build_file(size=6 * CHUNK + 500), build_file(size=2 * CHUNK + 7)
    for built in (a, b):
        blobs.put(xorb_key(hashing.to_hex(built.xorb_hash)), [built.xorb_body])
    terms = [term(a, 1, 4), term(b, 0, len(b.refs)), term(a, 0, 2)]
    data = a.data[CHUNK : 4 * CHUNK] + b.data + a.data[: 2 * CHUNK]
    blobs.put(recipe_key(FILE), [pack_recipe(terms)])
    return blobs, terms, data


def test_recipe_round_trip(stored: tuple[LocalBlobStore, list[Slice], bytes]) -> None:
    _, terms, _ = stored
    assert unpack_recipe(pack_recipe(terms)) == terms


def test_random_ranges_stream_the_right_bytes(
    stored: tuple[LocalBlobStore, list[Slice], bytes],
) -> None:
    blobs, terms, data = stored
    rng = random.Random(7)
    cases = [(0, len(data)), (0, 1), (len(data) - 1, len(data)), (CHUNK - 1, CHUNK + 1)]
    cases += [tuple(sorted(rng.sample(range(len(data) + 1), 2))) for _ in range(40)]
    for start, end in cases:
        got = b"".join(stream_file(blobs, FILE, start, end - start))
        assert got == data[start:end], (start, end)
        offset, slices = slice_range(terms, start, end)
        covered = sum(s.raw_len for s in slices)
        assert offset < slices[0].chunks[0][0] and covered - offset >= end - start
        # Trimmed to the range: dropping the last chunk would no longer reach the end.
        assert covered - slices[-1].chunks[-1][0] - offset < end - start


def test_fetch_ranges_merge_per_xorb_and_cover_the_terms(
    stored: tuple[LocalBlobStore, list[Slice], bytes],
) -> None:
    blobs, terms, _ = stored
    ranges = merged_ranges(terms)
    a = terms[0].xorb
    # Chunks 1-4 and 0-2 of xorb A overlap: one fetch range, chunks 0-4.
    assert [(c0, c1) for c0, c1, _, _ in ranges[a]] == [(0, 4)]
    (c0, c1, b0, b1) = ranges[a][0]
    raw = b"".join(blobs.open(xorb_key(hashing.to_hex(a)), b0, b1 - b0 + 1))
    assert len(list(decode_chunks(raw))) == c1 - c0


def test_range_header_forms() -> None:
    assert parse_range_header(None, 10) == (0, 10)
    assert parse_range_header("bytes=2-4", 10) == (2, 5)
    assert parse_range_header("bytes=2-", 10) == (2, 10)
    assert parse_range_header("bytes=-3", 10) == (7, 10)
    assert parse_range_header("bytes=5-100", 10) == (5, 10)
    assert parse_range_header("bytes=0-10", 0) == (0, 0)
    with pytest.raises(RangeNotSatisfiable, match="past the end"):
        parse_range_header("bytes=10-12", 10)
