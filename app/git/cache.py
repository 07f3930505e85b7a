"""A cache of clone replies, kept in the blob store under `git-cache/`.

An upload-pack reply depends only on the refs it was computed against, the request body and
the objects, and objects never change (content-addressed). So a clone's reply, keyed by a hash
of the refs snapshot and the body, can be replayed to the next client that sends the same
request against the same refs: one streamed read instead of one read per object (seconds on
S3 for a few thousand files). Only requests without `have` lines are cached (fresh, shallow
and partial clones); incremental fetches differ per client and are small.

Entries are disposable: deleting any of them at any time only costs a recomputation. `atrium gc`
deletes those older than its grace period (replies to refs that moved on are never read again).
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
from collections.abc import Mapping
from typing import IO

import dulwich

from app.blobs import BlobStore
from app.git.wire import Writer

log = logging.getLogger("atrium.git")

CACHE_PREFIX = "git-cache/"
# Part of every key: a reply computed by another version may differ in what it sends.
FORMAT = f"atrium-git-reply 1 dulwich {dulwich.__version__}\n".encode()
MIN_BYTES = 32 * 1024  # smaller replies are cheaper to recompute than to store
MAX_REQUEST_BYTES = 1024 * 1024  # a clone request is a few want lines
SPOOL_MEMORY = 4 * 1024 * 1024  # a reply being recorded goes to disk past this
READ_CHUNK = 1024 * 1024


def reply_key(refs: Mapping[str, str], wants_blobs: bool, body: IO[bytes]) -> str | None:
    """The cache key of an upload-pack request, or None when its reply is not cached."""
    data = body.read(MAX_REQUEST_BYTES + 1)
    body.seek(0)
    if len(data) > MAX_REQUEST_BYTES or _has_haves(data):
        return None
    digest = hashlib.sha256(FORMAT)
    for name, sha in sorted(refs.items()):
        digest.update(f"{name} {sha}\n".encode())
    digest.update(b"wants-blobs\n" if wants_blobs else b"\n")
    digest.update(data)
    return CACHE_PREFIX + digest.hexdigest()


def _has_haves(data: bytes) -> bool:
    """Whether a pkt-line request sends `have` lines (unparsable counts as yes)."""
    at = 0
    while at + 4 <= len(data):
        try:
            size = int(data[at : at + 4], 16)
        except ValueError:
            return True
        if size >= 4 and data[at + 4 : at + 9] == b"have ":
            return True
        at += max(size, 4)
    return False


class ReplyRecorder:
    """Copies a reply as it is written, then stores it (in the background, so the client
    does not wait) if the request completed and the reply is worth keeping."""

    def __init__(self, blobs: BlobStore, key: str):
        self.blobs = blobs
        self.key = key
        self.size = 0
        self.spool = tempfile.SpooledTemporaryFile(SPOOL_MEMORY, prefix="atrium-reply-")  # noqa: SIM115

    def wrap(self, write: Writer) -> Writer:
        def tee(data: bytes) -> None:
            write(data)
            self.spool.write(data)
            self.size += len(data)

        return tee

    def finish(self, ok: bool) -> None:
        if not ok or self.size < MIN_BYTES:
            self.spool.close()
            return
        threading.Thread(target=self._store, name="git-reply-cache", daemon=True).start()

    def _store(self) -> None:
        try:
            self.spool.seek(0)
            self.blobs.put(self.key, iter(lambda: self.spool.read(READ_CHUNK), b""))
        except Exception:
            log.warning("could not cache a clone reply", exc_info=True)
        finally:
            self.spool.close()
