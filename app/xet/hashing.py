"""Xet hashes (xet-protocol.md §2, §6): keyed BLAKE3 over chunks, merkle nodes and files.

A hash is 32 raw bytes everywhere in the binary formats; its *string* form (paths, JSON,
headers) prints each 8-byte group as a little-endian u64, which is not plain hex.
"""

from __future__ import annotations

from collections.abc import Sequence

from blake3 import blake3

HASH_LEN = 32
ZERO_HASH = bytes(HASH_LEN)
DATA_KEY = bytes.fromhex("6697f5775b9550de3135cbaca597181c9de421109beb2b58b4d0b04b93adf229")
INTERNAL_NODE_KEY = bytes.fromhex(
    "017ec5c7a5472996fd946666b48a02e65ddd536f37c76dd2f86352e64a53713f"
)
VERIFICATION_KEY = bytes.fromhex("7f1857d6ce56ed66127ff913e7a5c3f3a4cd26d5b5db49e64124987f28fb94c3")
# A merkle level groups 2..9 nodes, cutting after one whose hash is 0 mod 4 (aggregated_hashes.rs).
MAX_GROUP = 9
GROUP_MODULUS = 4
GLOBAL_DEDUP_MODULUS = 1024


def to_hex(raw: bytes) -> str:
    """The string form of a hash: each 8-byte group reversed, then hex-encoded."""
    return "".join(raw[i : i + 8][::-1].hex() for i in range(0, HASH_LEN, 8))


def from_hex(text: str) -> bytes:
    """Inverse of to_hex; ValueError for anything but 64 hex digits (either case)."""
    if len(text) != 2 * HASH_LEN:
        raise ValueError(f"a xet hash has 64 hex digits, not {len(text)}")
    raw = bytes.fromhex(text)
    return b"".join(raw[i : i + 8][::-1] for i in range(0, HASH_LEN, 8))


def keyed(key: bytes, data: bytes | memoryview) -> bytes:
    return blake3(data, key=key).digest()


def chunk_hash(data: bytes | memoryview) -> bytes:
    return keyed(DATA_KEY, data)


def tail_u64(raw: bytes) -> int:
    """The last 8 bytes as a little-endian u64: the value `hash % n` tests use."""
    return int.from_bytes(raw[24:32], "little")


def _group_end(level: Sequence[tuple[bytes, int]], start: int) -> int:
    remaining = len(level) - start
    if remaining <= 2:
        return len(level)
    end = min(MAX_GROUP, remaining)
    for i in range(2, end):
        if tail_u64(level[start + i][0]) % GROUP_MODULUS == 0:
            return start + i + 1
    return start + end


def _internal_node(group: Sequence[tuple[bytes, int]]) -> tuple[bytes, int]:
    text = "".join(f"{to_hex(h)} : {size}\n" for h, size in group)
    return keyed(INTERNAL_NODE_KEY, text.encode()), sum(size for _, size in group)


def merkle_root(nodes: Sequence[tuple[bytes, int]]) -> bytes:
    """Aggregated hash of (hash, size) pairs; 32 zero bytes for an empty list."""
    if not nodes:
        return ZERO_HASH
    level = list(nodes)
    while len(level) > 1:
        merged: list[tuple[bytes, int]] = []
        start = 0
        while start < len(level):
            end = _group_end(level, start)
            merged.append(_internal_node(level[start:end]))
            start = end
        level = merged
    return level[0][0]


def xorb_hash(chunks: Sequence[tuple[bytes, int]]) -> bytes:
    return merkle_root(chunks)


def file_hash(chunks: Sequence[tuple[bytes, int]], salt: bytes = ZERO_HASH) -> bytes:
    """The file id: the merkle root keyed once more by salt; the empty file is all zeros."""
    if not chunks:
        return ZERO_HASH
    return keyed(salt, merkle_root(chunks))


def verification_hash(chunk_hashes: Sequence[bytes]) -> bytes:
    """Proof that a shard's author knew every chunk hash of a term's range."""
    return keyed(VERIFICATION_KEY, b"".join(chunk_hashes))


def dedup_eligible(raw: bytes) -> bool:
    """Chunks the client asks the global dedup endpoint about (besides each file's first)."""
    return tail_u64(raw) % GLOBAL_DEDUP_MODULUS == 0
