"""Pure parts of the read API: Range parsing (hf-protocol.md §9.2, §9.3), Content-Disposition
and the OpenAPI schema of the routes."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from app.config import Settings
from app.errors import RangeNotSatisfiable
from app.hub.downloads import content_disposition, parse_range
from app.main import create_app


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-10", (90, 99)),
        ("bytes=-500", (0, 99)),  # a suffix longer than the file is the whole file
        ("bytes=90-500", (90, 99)),  # an end past the file is clamped
        ("bytes=9-3", None),  # backwards: ignored, the whole file is served
        ("bytes=0-1,5-6", None),  # multi-range: not supported, whole file
        ("items=0-5", None),
        ("bytes=abc", None),
        ("bytes= 3-4", (3, 4)),
    ],
)
def test_range_header_is_parsed_or_ignored(
    header: str | None, expected: tuple[int, int] | None
) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=150-200", "bytes=-0"])
def test_range_starting_past_the_end_is_416(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as caught:
        parse_range(header, 100)
    assert caught.value.headers["Content-Range"] == "bytes */100"


def test_any_range_of_an_empty_file_is_416() -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range("bytes=0-", 0)


def test_content_disposition_keeps_unicode_names_and_an_ascii_fallback() -> None:
    header = content_disposition('sub/modèle "v1".bin')
    assert "filename*=UTF-8''mod%C3%A8le%20%22v1%22.bin" in header
    assert 'filename="mod?le _v1_.bin"' in header


def test_openapi_schema_has_no_duplicate_operation_ids(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = app.openapi()["paths"]
    assert "/{namespace}/{name}/resolve/{rest}" in paths
    app.state.engine.dispose()
