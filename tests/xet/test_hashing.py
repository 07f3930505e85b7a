"""Hashes against xet-core's published vectors (aggregated_hashes.rs test_correctness, api.md)."""

from __future__ import annotations

import pytest

from app.xet import hashing

H1 = "cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6"
H2 = "c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72"
H3 = "0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37"
H4 = "adf8773496a9b7319b2e50dc98093f344053b17d8ad37100b9c07d9805988784"
ZERO = "0" * 64

# (nodes, xorb hash, [(salt, file hash)]) from xet-core's reference table.
VECTORS = [
    (
        [(H1, 100)],
        H1,
        [
            (ZERO, "8e16257caa3fe079d484d872a8975264b2ff683b0d6db9028cc7c0f968a45661"),
            (
                "285371a6a3c8c4e561469c97766c46f0b9799bd8ea51a4ad27a082df8c28b7da",
                "6c18994ed5e6a223aeff68a6e386dbba7b3c25de076245dc77892b4ad49ac978",
            ),
        ],
    ),
    (
        [(H1, 100), (H2, 200), (H3, 300)],
        "71ec1275fca074724e2dd666921b3277c7cee603e4d025bcab2d4050015be2bc",
        [
            (ZERO, "54e55dccc6653c612bdb5576c5d3cb34bb31bc4e100248abccf4c908b3ef7715"),
            (
                "b286606709ef32a1cfede1e603a39f83fef56772d8234c0e35d8920071d80b69",
                "337f1f046e4cfc1057f0f3edbd87cf977fdfaf3c2b0c0031ca2d1d2a34aa2270",
            ),
        ],
    ),
    (
        [(H1, 100)] * 4,
        "89f2ada89ff8c96763c6b25010e6dd76a4c05b1466207633ea559acf2093211b",
        [(ZERO, "2cdba690d0e09563596e0cda626d43eb4c96ef1e994fe72d9b2f5a83cfcd36dd")],
    ),
    (
        [(H1, 100), (H2, 200), (H1, 100), (H2, 200), (H3, 300), (H4, 400)],
        "52c826f99507aa05d0b45e9837fa1709e0485425cfbcb1e80db3905cf98b3ee9",
        [(ZERO, "91d21684db364c8883ab8209fa5eb2e781cf07f37e1fa43e731c30839afe422f")],
    ),
    (
        [(ZERO, 0), (H1, 100), (ZERO, 0), (H1, 100)],
        "e1755c85be07fd6b7a8d7becc85e6d8c5f507f2a3d38b316bcb6f97855e72188",
        [(ZERO, "207caf24fce045ac6d873b4c6186a5a435d600d103e1ae345e55ddf1f4b7f7ef")],
    ),
]


def test_string_form_reverses_each_eight_byte_group() -> None:
    raw = bytes(range(32))
    text = "07060504030201000f0e0d0c0b0a09081716151413121110" + "1f1e1d1c1b1a1918"
    assert hashing.to_hex(raw) == text
    assert hashing.from_hex(text) == raw
    assert hashing.from_hex(text.upper()) == raw
    with pytest.raises(ValueError):
        hashing.from_hex("ab")


@pytest.mark.parametrize(("nodes", "expected", "salted"), VECTORS)
def test_xorb_and_file_hashes_match_xet_core(
    nodes: list[tuple[str, int]], expected: str, salted: list[tuple[str, str]]
) -> None:
    pairs = [(hashing.from_hex(h), size) for h, size in nodes]
    assert hashing.to_hex(hashing.xorb_hash(pairs)) == expected
    for salt, file_hash in salted:
        assert hashing.to_hex(hashing.file_hash(pairs, hashing.from_hex(salt))) == file_hash


def test_empty_lists_hash_to_zeros() -> None:
    assert hashing.xorb_hash([]) == hashing.ZERO_HASH
    assert hashing.file_hash([]) == hashing.ZERO_HASH
