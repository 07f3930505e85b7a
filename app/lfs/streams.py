"""Feeding a request body that arrives on the event loop to the blob store's blocking `put`,
which runs in a worker thread: the body is pulled through the loop in blocks, never held
whole, so a multi-GB upload costs a few MiB of memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio.from_thread

from app.blobs.base import MiB

BLOCK = 4 * MiB  # bytes gathered per hop between the loop and the worker thread


def blocking_chunks(stream: AsyncIterator[bytes]) -> Iterator[bytes]:
    """Iterate an async byte stream from a thread started by `anyio.to_thread.run_sync`."""

    async def next_block() -> bytes:
        parts: list[bytes] = []
        gathered = 0
        while gathered < BLOCK:
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                break
            parts.append(chunk)
            gathered += len(chunk)
        return b"".join(parts)

    while block := anyio.from_thread.run(next_block):
        yield block
