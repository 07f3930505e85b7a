"""The V2 shard answer (xet-protocol.md §4.4): NDJSON frames ending in a result or error frame.

Verifying a shard recomputes the sha256 of every new file, which takes minutes for a
multi-GB upload. A shard that is settled quickly gets a plain answer (400 for a lie, before
any byte is sent); a slow one gets `validating` frames as keep-alives while it runs, then
the terminal frame, so the client's read timeout never fires.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from app.errors import AtriumError

FIRST_ANSWER_WAIT_S = 5.0  # settle within this and the answer is plain (errors stay 400s)
KEEPALIVE_EVERY_S = 15.0  # the production server repeats a frame about every 20 s


def frame(**fields: object) -> str:
    return json.dumps(fields) + "\n"


def result_frame(result: int) -> str:
    return frame(type="result", result=result)


async def settle_or_stream(
    work: Callable[[], Awaitable[int]],
    first_wait: float = FIRST_ANSWER_WAIT_S,
    every: float = KEEPALIVE_EVERY_S,
) -> str | AsyncIterator[str]:
    """The result frame if work finishes within first_wait (its errors propagate), else an
    iterator of keep-alive frames that ends with the result or an error frame."""
    task = asyncio.ensure_future(work())
    done, _ = await asyncio.wait({task}, timeout=first_wait)
    if done:
        return result_frame(task.result())

    async def frames() -> AsyncIterator[str]:
        while not (await asyncio.wait({task}, timeout=every))[0]:
            yield frame(type="validating", verified=0, total=1)
        try:
            yield result_frame(task.result())
        except AtriumError as exc:
            yield frame(type="error", message=exc.message, retryable=exc.status >= 500)

    return frames()
