"""Helpers of the Xet tests: a protocol-level client that builds xorbs and shards the way
hf_xet lays them out, so tests can also send lies the real client never would."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select

from app.xet import hashing, shard, xorb
from app.xet.models import XetXorb
from tests.live import LiveServer

CHUNK = 16 * 1024


@dataclass
class BuiltFile:
    data: bytes
    xorb_body: bytes
    xorb_hash: bytes
    refs: list[xorb.ChunkRef]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def file_hash(self) -> bytes:
        return hashing.file_hash([(r.hash, r.raw_len) for r in self.refs])

    def entry(
        self, sha256: str | None = None, verification: bytes | None = None
    ) -> shard.FileEntry:
        """The file's shard entry, optionally with a lying sha256 or verification hash."""
        proof = verification or hashing.verification_hash([r.hash for r in self.refs])
        term = shard.Term(self.xorb_hash, len(self.data), 0, len(self.refs), proof)
        return shard.FileEntry(self.file_hash, [term], hashing.from_hex(sha256 or self.sha256))

    def shard(self, sha256: str | None = None, verification: bytes | None = None) -> bytes:
        """An upload shard of this file alone, optionally lying like entry()."""
        entry = self.entry(sha256, verification)
        return shard.build_upload_shard([entry], {self.xorb_hash: self.refs})


def build_file(data: bytes | None = None, size: int = 5 * CHUNK + 123) -> BuiltFile:
    """Fixed-size chunks in one LZ4 xorb (the server accepts any chunking the hashes match)."""
    data = os.urandom(size) if data is None else data
    pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    body = b"".join(xorb.encode_chunk(p, xorb.SCHEME_LZ4) for p in pieces)
    xhash = hashing.xorb_hash([(hashing.chunk_hash(p), len(p)) for p in pieces])
    return BuiltFile(data, body, xhash, xorb.parse_xorb(body, xhash).chunks)


@dataclass
class CasClient:
    hub: str
    cas: str
    token: str

    @classmethod
    def connect(
        cls, server: LiveServer, hub_token: str, repo: str, scope: str = "write"
    ) -> CasClient:
        answer = httpx.get(
            f"{server.url}/api/models/{repo}/xet-{scope}-token/main",
            headers={"authorization": f"Bearer {hub_token}"},
        )
        answer.raise_for_status()
        body = answer.json()
        return cls(server.url, body["casUrl"], body["accessToken"])

    @property
    def auth(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}

    def post_xorb(self, built: BuiltFile, body: bytes | None = None) -> httpx.Response:
        url = f"{self.cas}/v1/xorbs/default/{hashing.to_hex(built.xorb_hash)}"
        return httpx.post(url, content=built.xorb_body if body is None else body, headers=self.auth)

    def post_shard(self, data: bytes, version: int = 1) -> httpx.Response:
        return httpx.post(
            f"{self.cas}/v{version}/shards", content=data, headers=self.auth, timeout=60
        )

    def reconstruction(
        self, file_hash: bytes, version: int = 2, range_: str | None = None
    ) -> httpx.Response:
        headers = dict(self.auth)
        if range_:
            headers["range"] = range_
        url = f"{self.cas}/v{version}/reconstructions/{hashing.to_hex(file_hash)}"
        return httpx.get(url, headers=headers)


def stored_xorb_bytes(server: LiveServer) -> int:
    """Bytes of xorb data the server holds, all repos together."""
    with server.app().state.sessionmaker() as session:
        return int(session.scalar(select(func.coalesce(func.sum(XetXorb.stored_bytes), 0))) or 0)
