"""Xorb and shard byte formats: round trips through the client's layouts, and lies refused."""

from __future__ import annotations

import os

import lz4.frame
import pytest

from app.xet import hashing, shard, xorb


def make_xorb(chunks: list[bytes], schemes: list[int]) -> tuple[bytes, bytes]:
    body = b"".join(xorb.encode_chunk(c, s) for c, s in zip(chunks, schemes, strict=True))
    xhash = hashing.xorb_hash([(hashing.chunk_hash(c), len(c)) for c in chunks])
    return body, xhash


def test_xorb_with_every_scheme_parses_and_indexes_offsets() -> None:
    chunks = [os.urandom(5000), b"a" * 9000, bytes(range(256)) * 30 + b"xyz"]
    schemes = [xorb.SCHEME_NONE, xorb.SCHEME_LZ4, xorb.SCHEME_BG4_LZ4]
    body, xhash = make_xorb(chunks, schemes)
    parsed = xorb.parse_xorb(body, xhash)
    assert [c.raw_len for c in parsed.chunks] == [len(c) for c in chunks]
    assert parsed.chunks[0].start == 0 and parsed.chunks[-1].end == len(body)
    assert list(xorb.decode_chunks(body)) == chunks
    assert xorb.unpack_index(xorb.pack_index(parsed.chunks)) == parsed.chunks


def test_bg4_interleaves_by_position_mod_four() -> None:
    data = bytes(range(10))
    assert xorb.byte_group4(data) == bytes([0, 4, 8, 1, 5, 9, 2, 6, 3, 7])
    assert xorb.byte_ungroup4(xorb.byte_group4(data)) == data


def test_legacy_footer_is_stripped() -> None:
    body, xhash = make_xorb([b"hello" * 100], [xorb.SCHEME_LZ4])
    parsed = xorb.parse_xorb(body + b"XETBLOB\x01" + bytes(40) + (48).to_bytes(4, "little"), xhash)
    assert parsed.body == body


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="flipped-byte"),
        pytest.param(lambda b: b[:-3], id="truncated"),
        pytest.param(lambda b: b"\x01" + b[1:], id="bad-version"),
        pytest.param(lambda b: b[:4] + b"\x07" + b[5:], id="bad-scheme"),
        pytest.param(lambda b: b + b"junk", id="trailing-bytes"),
    ],
)
def test_a_lying_xorb_is_refused(mutate: object) -> None:
    assert callable(mutate)
    body, xhash = make_xorb([b"abc" * 3000, os.urandom(1000)], [xorb.SCHEME_LZ4] * 2)
    with pytest.raises(xorb.InvalidXorb):
        xorb.parse_xorb(mutate(body), xhash)


def test_xorb_hash_must_match_content() -> None:
    body, _ = make_xorb([b"abc" * 3000], [xorb.SCHEME_LZ4])
    with pytest.raises(xorb.InvalidXorb, match="hashes to"):
        xorb.parse_xorb(body, bytes(32))


def test_corrupt_lz4_frame_is_refused() -> None:
    payload = lz4.frame.compress(b"x" * 1000)[:-6] + b"\x00" * 6
    chunk = bytes([0]) + len(payload).to_bytes(3, "little") + b"\x01" + (1000).to_bytes(3, "little")
    with pytest.raises(xorb.InvalidXorb):
        xorb.parse_xorb(chunk + payload, bytes(32))


def test_upload_shard_round_trip() -> None:
    chunks = [os.urandom(3000), os.urandom(4000)]
    body, xhash = make_xorb(chunks, [xorb.SCHEME_NONE] * 2)
    refs = xorb.parse_xorb(body, xhash).chunks
    sha = hashing.from_hex("ab" * 32)
    term = shard.Term(xhash, 7000, 0, 2, hashing.verification_hash([r.hash for r in refs]))
    fhash = hashing.file_hash([(r.hash, r.raw_len) for r in refs])
    data = shard.build_upload_shard([shard.FileEntry(fhash, [term], sha)], {xhash: refs})
    parsed = shard.parse_shard(data)
    assert parsed.xorbs == [xhash]
    (entry,) = parsed.files
    assert entry.hash == fhash and entry.size == 7000 and entry.sha256_hex == "ab" * 32
    assert entry.terms == [term]
    with pytest.raises(shard.InvalidShard):
        shard.parse_shard(data[:-10])
    with pytest.raises(shard.InvalidShard):
        shard.parse_shard(b"\x00" * 48 + data[48:])


def test_dedup_answer_has_a_200_byte_footer_pointing_at_its_sections() -> None:
    chunks = [os.urandom(3000), os.urandom(2000)]
    body, xhash = make_xorb(chunks, [xorb.SCHEME_NONE] * 2)
    refs = xorb.parse_xorb(body, xhash).chunks
    key = os.urandom(32)
    answer = shard.build_dedup_answer({xhash: refs}, key, 3600, now=1000)
    footer = shard.FOOTER.unpack(answer[-200:])
    assert footer[0] == 1 and footer[-1] == len(answer) - 200
    assert footer[9] == key and footer[10] == 1000 and footer[11] == 4600
    # The answer names the chunk only by its keyed hash.
    assert refs[0].hash not in answer
    assert hashing.keyed(key, refs[0].hash) in answer
