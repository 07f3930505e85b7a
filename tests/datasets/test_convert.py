"""The conversion cache: one job per content, progress while it runs, failures kept with
their reason, and a request that waits too long told to retry."""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from app.datasets.convert import ConversionFailed, Converter, Job, ResponseNotReady


def job_for(tmp_path: Path, key: str, content: bytes, gate: threading.Event | None = None) -> Job:
    source = tmp_path / f"{key}.csv"
    source.write_bytes(content)

    def local() -> tuple[Path, bool]:
        if gate is not None:
            gate.wait(30)
        return source, False

    return Job(key=key, name=f"data/{key}.csv", format="csv", size=len(content), local=local)


def test_a_slow_conversion_is_pending_then_done(tmp_path: Path) -> None:
    converter = Converter(tmp_path / "cache")
    gate = threading.Event()
    job = job_for(tmp_path, "slow", b"a,b\n1,x\n2,y\n", gate)
    with pytest.raises(ResponseNotReady) as caught:
        converter.wait(job, timeout=0.1)
    assert caught.value.status == 503 and caught.value.headers["Retry-After"]
    assert "data/slow.csv is being converted" in caught.value.message
    status = converter.status("slow")
    assert (status.state, status.progress) == ("pending", 0.0)
    gate.set()
    path = converter.wait(job)
    assert pq.read_table(path).to_pylist() == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert converter.status("slow").state == "done"
    converter.close()


def test_a_failure_is_kept_with_its_reason_and_not_retried(tmp_path: Path) -> None:
    converter = Converter(tmp_path / "cache")
    job = job_for(tmp_path, "bad", b"a,b\n1,2\n3,4,5\n")
    with pytest.raises(ConversionFailed, match="Expected 2 columns, got 3"):
        converter.wait(job)
    assert converter.submit(job) is None  # the same bytes always fail: no second job
    assert "Expected 2 columns" in (converter.status("bad").error or "")
    converter.close()


@pytest.mark.parametrize(
    ("fmt", "content", "rows"),
    [
        ("json", b'[{"a": 1}, {"a": 2}]', [{"a": 1}, {"a": 2}]),
        ("json", b'{"a": "x"}\n{"a": "y"}\n', [{"a": "x"}, {"a": "y"}]),
        ("tsv", b"a\tb\n1\tx y\n", [{"a": 1, "b": "x y"}]),
        ("text", b"one\r\ntwo\n", [{"text": "one"}, {"text": "two"}]),
    ],
)
def test_each_format_converts(tmp_path: Path, fmt: str, content: bytes, rows: list[dict]) -> None:
    converter = Converter(tmp_path / "cache")
    source = tmp_path / "source"
    source.write_bytes(content)
    job = Job(key=fmt, name="f", format=fmt, size=len(content), local=lambda: (source, False))
    assert pq.read_table(converter.wait(job)).to_pylist() == rows
    converter.close()


@pytest.mark.parametrize(
    ("fmt", "content", "reason"),
    [
        ("json", b'{"a": 1}\n{"a":\n', "Malformed JSON"),
        ("text", b"\xff\xfe bad utf-8", "utf-8"),
    ],
)
def test_malformed_files_fail_with_the_reason(
    tmp_path: Path, fmt: str, content: bytes, reason: str
) -> None:
    converter = Converter(tmp_path / "cache")
    source = tmp_path / "source"
    source.write_bytes(content)
    job = Job(key=fmt, name="f", format=fmt, size=len(content), local=lambda: (source, False))
    with pytest.raises(ConversionFailed, match=reason):
        converter.wait(job)
    converter.close()


def test_a_column_whose_type_changes_after_the_first_block_is_read_as_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.datasets.convert.CSV_BLOCK_BYTES", 64)
    lines = [f"{i},n{i}" for i in range(20)] + ["not a number,x"]
    content = ("a,b\n" + "\n".join(lines) + "\n").encode()
    converter = Converter(tmp_path / "cache")
    job = job_for(tmp_path, "mixed", content)
    table = pq.read_table(converter.wait(job))
    assert table.column("a").to_pylist()[-2:] == ["19", "not a number"]
    assert table.num_rows == 21
    converter.close()
