"""Sizes as admins write them (`ATRIUM_NAMESPACE_QUOTA`, `atrium quota set`) and as the
refusal message shows them."""

from __future__ import annotations

import pytest

from app.config import Settings, parse_size
from app.quotas.service import format_size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("0", 0),
        ("1024", 1024),
        ("10GB", 10 * 10**9),
        ("10 gb", 10 * 10**9),
        ("1.5k", 1500),
        ("500MiB", 500 * 1024**2),
        ("2 TiB", 2 * 1024**4),
    ],
)
def test_sizes_parse_in_decimal_and_binary_units(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "ten", "10XB", "1iB", "-5MB"])
def test_malformed_sizes_are_refused_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="is not a size"):
        parse_size(text)


def test_setting_accepts_a_human_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATRIUM_NAMESPACE_QUOTA", "10GB")
    assert Settings().namespace_quota == 10 * 10**9


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (1, "1 byte"),
        (999, "999 bytes"),
        (602_000, "602 kB"),
        (999_600, "1 MB"),
        (9_800_000_000, "9.8 GB"),
    ],
)
def test_sizes_show_in_decimal_units(size: int, text: str) -> None:
    assert format_size(size) == text
