"""Between ASGI and dulwich's blocking protocol handlers: spooled request bodies, streamed replies.

dulwich's handlers read and write synchronously, so each one runs on its own thread. The request
body is first spooled to a temporary file (memory up to `SPOOL_MEMORY`, then disk), so a large
push is never held in memory and a slow client never pins a handler thread. The reply flows
back through a bounded queue: a clone streams its pack while it is being written, and a client
that stops reading stops the writer (back-pressure) instead of filling memory.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import tempfile
import threading
import zlib
from collections.abc import AsyncIterator, Callable
from typing import IO

import anyio
from dulwich.errors import GitProtocolError, HangupException
from dulwich.protocol import pkt_line
from starlette.requests import Request

from app.errors import BadRequest, PayloadTooLarge

log = logging.getLogger("atrium.git")

SPOOL_MEMORY = 4 * 1024 * 1024  # request bodies above this go to a temporary file
REPLY_CHUNK = 256 * 1024  # dulwich writes many small pkt-lines; coalesce them
REPLY_QUEUE = 16  # chunks in flight: REPLY_QUEUE * REPLY_CHUNK bytes of reply at most
PUT_TIMEOUT_S = 1.0  # how often a blocked writer checks that the client is still there

Writer = Callable[[bytes], None]


async def spool_body(request: Request, max_bytes: int) -> IO[bytes]:
    """The request body, decoded from `Content-Encoding: gzip` (git compresses large fetch
    negotiations, remote-curl.c), in a rewound temporary file; PayloadTooLarge past max_bytes."""
    gzip = request.headers.get("content-encoding", "").lower() in ("gzip", "x-gzip")
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
    # Handed to the handler thread, which closes it (app.git.service.serve).
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY, prefix="atrium-git-")  # noqa: SIM115
    total = 0
    try:
        async for chunk in request.stream():
            try:
                data = inflater.decompress(chunk) if inflater else chunk
            except zlib.error:
                raise BadRequest("request body is not valid gzip") from None
            total += len(data)
            if total > max_bytes:
                raise PayloadTooLarge(f"Request body too large: the limit is {max_bytes} bytes")
            spool.write(data)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)
    return spool


class _Reply:
    """The write end used by the handler thread: coalesces output into a bounded queue."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes | None] = queue.Queue(REPLY_QUEUE)
        self.buffer = bytearray()
        self.gone = threading.Event()  # set when the client disconnected

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= REPLY_CHUNK:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self._put(bytes(self.buffer))
            self.buffer.clear()

    def close(self) -> None:
        self.flush()
        self._put(None)

    def _put(self, item: bytes | None) -> None:
        while not self.gone.is_set():
            try:
                self.queue.put(item, timeout=PUT_TIMEOUT_S)
                return
            except queue.Full:
                continue
        raise HangupException()


def _run(work: Callable[[Writer], None], reply: _Reply) -> None:
    try:
        work(reply.write)
    except HangupException:
        if reply.gone.is_set():
            return  # the client went away; nothing to tell it
        log.warning("git client hung up mid-request")
    except GitProtocolError as exc:
        # "ERR <message>" is the protocol's way to abort; git prints "remote error: <message>".
        reply.write(pkt_line(f"ERR {exc}".encode()))
    except Exception:
        log.exception("git request failed")
        reply.write(pkt_line(b"ERR internal server error; see the server log"))
    with contextlib.suppress(HangupException):
        reply.close()


async def stream_reply(work: Callable[[Writer], None]) -> AsyncIterator[bytes]:
    """Run work(write) on a thread and yield what it writes, as it writes it."""
    reply = _Reply()
    thread = threading.Thread(target=_run, args=(work, reply), name="git-handler", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = await anyio.to_thread.run_sync(reply.queue.get, True, PUT_TIMEOUT_S)
            except queue.Empty:
                continue  # timed out so that a cancelled request frees its waiting thread
            if item is None:
                return
            yield item
    finally:
        reply.gone.set()
