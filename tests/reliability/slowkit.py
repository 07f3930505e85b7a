"""Uploads sent by hand on raw sockets, to be slow on purpose: the signed LFS PUT URL from the
batch API (as git-lfs and huggingface_hub get it), a head, then as many bytes as the caller
sends. Used by the slow-client tests and by `bench/load.py`."""

from __future__ import annotations

import contextlib
import hashlib
import os
import select
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx

from tests.live import LiveServer


def signed_put(server: LiveServer, repo_id: str, token: str, data: bytes) -> str:
    """The signed basic-transfer URL the LFS batch API gives for an upload of data."""
    oid = hashlib.sha256(data).hexdigest()
    answer = httpx.post(
        f"{server.url}/{repo_id}.git/info/lfs/objects/batch",
        headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.git-lfs+json"},
        json={"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]},
    )
    assert answer.status_code == 200, answer.text
    href: str = answer.json()["objects"][0]["actions"]["upload"]["href"]
    return href


class Upload:
    """One PUT of `data` to a signed URL: the head at once, the body as `send` is called."""

    def __init__(self, href: str, data: bytes, source: str = "127.0.0.1"):
        parts = urlsplit(href)
        self.data = data
        self.sock = socket.create_connection(
            (parts.hostname, parts.port), timeout=30, source_address=(source, 0)
        )
        head = (
            f"PUT {parts.path}?{parts.query} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        self.sock.sendall(head.encode())
        self.sent = 0

    def send(self, count: int) -> None:
        self.sock.sendall(self.data[self.sent : self.sent + count])
        self.sent += count

    def answered(self) -> bool:
        return bool(select.select([self.sock], [], [], 0)[0])

    def status(self) -> int:
        """The answer's status code (waits for it)."""
        line = self.sock.makefile("rb").readline()
        return int(line.split()[1])

    def answer(self) -> bytes:
        """The answer's head and JSON body (waits for it)."""
        self.sock.settimeout(30)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := self.sock.recv(65536):
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and b"}" in chunk:
                    break
        return b"".join(chunks)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@contextlib.contextmanager
def trickling(
    server: LiveServer,
    repo_id: str,
    token: str,
    count: int,
    *,
    fast_start: int = 0,
    first: int = 0,
    addresses: int = 4,
) -> Iterator[list[Upload]]:
    """`count` uploads held open, each sending one byte every half second; the first
    `fast_start` of them send `first` bytes at once. They come from `addresses` loopback
    addresses (127.0.0.2 on), to stay under the per-address limit."""
    uploads: list[Upload] = []
    stop = threading.Event()

    def trickle() -> None:
        while not stop.wait(0.5):
            for upload in uploads:
                with contextlib.suppress(OSError):
                    upload.send(1)

    trickler = threading.Thread(target=trickle, daemon=True)
    try:
        for index in range(count):
            size = first + 300_000 if index < fast_start else 50_000
            data = os.urandom(size)
            source = f"127.0.0.{2 + index % addresses}"
            upload = Upload(signed_put(server, repo_id, token, data), data, source)
            upload.send(first + 1 if index < fast_start else 1)
            uploads.append(upload)
        trickler.start()
        yield uploads
    finally:
        stop.set()
        for upload in uploads:
            upload.close()
