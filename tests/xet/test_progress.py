"""The V2 shard answer: plain when verification settles fast, keep-alive frames when slow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from app.xet.progress import settle_or_stream
from app.xet.shard import InvalidShard


async def collect(answer: str | AsyncIterator[str]) -> list[dict[str, object]]:
    if isinstance(answer, str):
        return [json.loads(answer)]
    return [json.loads(line) async for line in answer]


def run(seconds: float, fail: bool = False) -> list[dict[str, object]]:
    async def work() -> int:
        await asyncio.sleep(seconds)
        if fail:
            raise InvalidShard("file abc: wrong sha256")
        return 1

    async def main() -> list[dict[str, object]]:
        return await collect(await settle_or_stream(work, first_wait=0.05, every=0.05))

    return asyncio.run(main())


def test_fast_verification_answers_one_result_frame() -> None:
    assert run(0) == [{"type": "result", "result": 1}]


def test_fast_failure_is_a_plain_error() -> None:
    with pytest.raises(InvalidShard):
        run(0, fail=True)


def test_slow_verification_sends_keepalives_then_the_result() -> None:
    frames = run(0.3)
    assert frames[-1] == {"type": "result", "result": 1}
    assert len(frames) >= 3 and all(f["type"] == "validating" for f in frames[:-1])


def test_slow_failure_ends_with_an_error_frame() -> None:
    frames = run(0.3, fail=True)
    assert frames[-1] == {"type": "error", "message": "file abc: wrong sha256", "retryable": False}
