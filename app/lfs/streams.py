"""Feeding a request body that arrives on the event loop to the blob store's blocking `put`,
which runs in a worker thread. A task on the loop reads the body into blocks while the thread
hashes and writes the previous ones, so receiving and storing overlap; at most a few blocks
are held, so a multi-GB upload costs a few MiB of memory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import ClientDisconnect

from app.blobs.base import MiB

BLOCK = 4 * MiB  # bytes gathered per hop between the loop and the worker thread
BLOCKS_AHEAD = 2  # blocks read ahead of the thread: bounds memory at about 4 blocks

T = TypeVar("T")


async def _read_blocks(stream: AsyncIterator[bytes], send: MemoryObjectSendStream[bytes]) -> None:
    """Read the body into blocks. A failed read (the client went away) just ends the stream:
    the consumer then sees too few bytes and refuses the upload."""
    async with send:
        parts: list[bytes] = []
        gathered = 0
        try:
            async for chunk in stream:
                parts.append(chunk)
                gathered += len(chunk)
                if gathered >= BLOCK:
                    await send.send(b"".join(parts))
                    parts, gathered = [], 0
        except (OSError, ClientDisconnect, anyio.BrokenResourceError):
            return
        if parts:
            await send.send(b"".join(parts))


def _blocks(receive: MemoryObjectReceiveStream[bytes]) -> Iterator[bytes]:
    """The blocks, seen from the worker thread."""
    while True:
        try:
            yield anyio.from_thread.run(receive.receive)
        except anyio.EndOfStream:
            return


async def consume_in_thread(
    stream: AsyncIterator[bytes], consume: Callable[[Iterator[bytes]], T]
) -> T:
    """Run `consume(chunks)` in a worker thread over the async byte stream; its exception
    (a hash mismatch, say) is raised as is, not inside an ExceptionGroup."""
    send, receive = anyio.create_memory_object_stream[bytes](max_buffer_size=BLOCKS_AHEAD)
    failure: Exception | None = None
    async with anyio.create_task_group() as group, receive:
        group.start_soon(_read_blocks, stream, send)
        try:
            result = await anyio.to_thread.run_sync(consume, _blocks(receive))
        except Exception as exc:
            failure = exc
        group.cancel_scope.cancel()  # a consumer that stopped early leaves nothing to read
    if failure is not None:
        raise failure
    return result
