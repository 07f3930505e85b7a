"""A TCP proxy on loopback that injects storage faults between the server and S3 (moto).

Modes: `pass` forwards both ways; `down` accepts and at once closes every new connection (an
object store that fails); `hang` accepts connections and never answers (a store that stalls);
`cut` forwards requests but closes the connection after `cut_after`
bytes of an answer (a store that dies mid-download). Existing connections are closed whenever
the mode changes, so pooled keep-alive connections see the new mode too.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class FaultProxy:
    def __init__(self, upstream: str):
        host, _, port = upstream.removeprefix("http://").partition(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.mode = "pass"
        self.cut_after = 0
        self.open: set[socket.socket] = set()
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def set(self, mode: str, cut_after: int = 0) -> None:
        self.mode, self.cut_after = mode, cut_after
        with self.lock:
            for sock in self.open:
                _close(sock)
            self.open.clear()

    @contextmanager
    def fault(self, mode: str, cut_after: int = 0) -> Iterator[None]:
        self.set(mode, cut_after)
        try:
            yield
        finally:
            self.set("pass")

    def close(self) -> None:
        self.closed = True
        _close(self.listener)
        self.set("pass")

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.mode == "down":
                _close(client)
                continue
            if self.mode == "hang":  # held open, unanswered, until the mode changes
                with self.lock:
                    self.open.add(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=30)
        except OSError:
            _close(client)
            return
        with self.lock:
            self.open.update((client, server))
        limit = self.cut_after if self.mode == "cut" else None
        threading.Thread(target=_pump, args=(client, server, None), daemon=True).start()
        _pump(server, client, limit)


def _pump(source: socket.socket, target: socket.socket, limit: int | None) -> None:
    """Copy source to target; after `limit` bytes, drop both ends."""
    sent = 0
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            if limit is not None and sent + len(data) > limit:
                target.sendall(data[: max(0, limit - sent)])
                break
            target.sendall(data)
            sent += len(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
