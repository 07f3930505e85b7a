"""Feeding a request body that arrives on the event loop to the blob store's blocking `put`,
which runs in a worker thread. A task on the loop reads the body into blocks while the thread
hashes and writes the previous ones, so receiving and storing overlap; at most a few blocks
are held, so a multi-GB upload costs a few MiB of memory.

A slow client must not be able to hold the threads that answer everyone else:

- the thread starts only once the first block is complete (or the body ended): a client that
  trickles bytes costs a socket and a few bytes, never a thread;
- the threads that store bodies come from their own small pool (`UPLOAD_THREADS`), apart
  from the one that serves requests, so uploads can only ever wait for each other;
- an upload that sends nothing for `Pace.idle_s`, or averages less than `Pace.min_rate`
  bytes per second over a block, is cut off with 408 and its thread released;
- one client address sends at most `UploadSlots.per_client` bodies at once (429 beyond).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from starlette.requests import ClientDisconnect

from app.blobs.base import MiB
from app.errors import RequestTimeout, TooManyRequests

BLOCK = 4 * MiB  # bytes gathered per hop between the loop and the worker thread
BLOCKS_AHEAD = 2  # blocks read ahead of the thread: bounds memory at about 4 blocks
UPLOAD_THREADS = 16  # threads storing upload bodies at once, over all clients

T = TypeVar("T")


@dataclass(frozen=True)
class Pace:
    """The slowest upload accepted: silent at most idle_s seconds at a time, and, once a block
    has taken longer than idle_s, at least min_rate bytes per second over that block."""

    idle_s: float = 60.0
    min_rate: int = 4096


@dataclass
class _Reading:
    too_slow: str = ""  # why the reader cut the body off, when it did


async def _read_blocks(
    stream: AsyncIterator[bytes], send: MemoryObjectSendStream[bytes], pace: Pace, state: _Reading
) -> None:
    """Read the body into blocks. A failed read (the client went away) or a cut-off just ends
    the stream: the consumer then sees too few bytes and refuses the upload."""
    async with send:
        parts: list[bytes] = []
        gathered = 0
        started = time.monotonic()
        chunks = stream.__aiter__()
        while True:
            try:
                with anyio.fail_after(pace.idle_s):
                    chunk = await chunks.__anext__()
            except StopAsyncIteration:
                break
            except TimeoutError:
                state.too_slow = f"no data for {pace.idle_s:g} s"
                return
            except (OSError, ClientDisconnect, anyio.BrokenResourceError):
                return
            parts.append(chunk)
            gathered += len(chunk)
            elapsed = time.monotonic() - started
            if elapsed > pace.idle_s and gathered < pace.min_rate * elapsed:
                rate = int(gathered / elapsed)
                state.too_slow = f"{rate} bytes/s, below the minimum of {pace.min_rate} bytes/s"
                return
            if gathered >= BLOCK:
                await send.send(b"".join(parts))
                parts, gathered, started = [], 0, time.monotonic()
        if parts:
            await send.send(b"".join(parts))


def _blocks(first: bytes | None, receive: MemoryObjectReceiveStream[bytes]) -> Iterator[bytes]:
    """The blocks, seen from the worker thread."""
    if first is None:
        return
    yield first
    while True:
        try:
            yield anyio.from_thread.run(receive.receive)
        except anyio.EndOfStream:
            return


async def consume_in_thread(
    stream: AsyncIterator[bytes],
    consume: Callable[[Iterator[bytes]], T],
    pace: Pace = Pace(),
    limiter: anyio.CapacityLimiter | None = None,
) -> T:
    """Run `consume(chunks)` in a thread of `limiter` over the async byte stream, once its
    first block is in; its exception (a hash mismatch, say) is raised as is, not inside an
    ExceptionGroup. RequestTimeout when the client sent too slowly, whatever the consumer
    made of the bytes it got."""
    send, receive = anyio.create_memory_object_stream[bytes](max_buffer_size=BLOCKS_AHEAD)
    state = _Reading()
    failure: Exception | None = None
    result: T | None = None
    async with anyio.create_task_group() as group, receive:
        group.start_soon(_read_blocks, stream, send, pace, state)
        try:
            try:
                first: bytes | None = await receive.receive()
            except anyio.EndOfStream:
                first = None
            if not state.too_slow:
                result = await anyio.to_thread.run_sync(
                    consume, _blocks(first, receive), limiter=limiter
                )
        except Exception as exc:
            failure = exc
        group.cancel_scope.cancel()  # a consumer that stopped early leaves nothing to read
    if state.too_slow:
        raise RequestTimeout(f"Upload too slow ({state.too_slow}); retry on a faster link")
    if failure is not None:
        raise failure
    return result  # type: ignore[return-value]


class Uploads:
    """The process's uploads: how many bodies each client address is sending now (capped at
    per_client), the pace each must keep, and the threads that store them."""

    def __init__(self, per_client: int, pace: Pace):
        self.per_client = per_client
        self.pace = pace
        self.active: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._limiter: anyio.CapacityLimiter | None = None

    @property
    def limiter(self) -> anyio.CapacityLimiter:
        """Made on first use, on the event loop (anyio binds a limiter to its loop)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(UPLOAD_THREADS)
        return self._limiter

    @contextmanager
    def hold(self, client: str) -> Iterator[None]:
        with self.lock:
            if self.active[client] >= self.per_client:
                raise TooManyRequests(
                    f"{self.per_client} uploads from your address are in progress; "
                    "retry when one has finished",
                    retry_after_s=1,
                )
            self.active[client] += 1
        try:
            yield
        finally:
            with self.lock:
                self.active[client] -= 1
                if not self.active[client]:
                    del self.active[client]
