"""The CAS write path: verify and store xorbs, verify and register shards (xet-protocol.md §6).

Nothing a client sends is trusted. A xorb is stored only after every chunk was decoded and the
xorb hash recomputed. A shard's files are registered only after each term was checked against
the server's own chunk index (including the verification hash, which proves the uploader knew
the chunks), the file hash recomputed, and the sha256 recomputed from the reconstructed bytes.
Registration then makes the file an LFS object of the token's repo, so that the commit endpoint
accepts an `lfsFile` naming its sha256.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import BlobStore
from app.blobs.base import exists
from app.blobs.keys import recipe_key, xorb_key
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.errors import BadRequest
from app.quotas.service import RepoQuota, Upload
from app.repos.models import LfsObject, RepoLfsObject
from app.xet import hashing
from app.xet.models import XetDedupChunk, XetFile, XetXorb
from app.xet.reconstruction import Slice, pack_recipe, stream_file
from app.xet.shard import FileEntry, InvalidShard, Term, parse_shard
from app.xet.xorb import ChunkRef, pack_index, parse_xorb, unpack_index

SHA256_WORKERS = 4  # files of one shard hashed at once (hashlib releases the GIL)


class UnknownXorb(InvalidShard):
    default_message = "Shard references a xorb this server does not hold"


def store_xorb(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    xorb_hex: str,
    body: bytes,
    quota: RepoQuota | None = None,
) -> bool:
    """Verify and store one xorb; False when it was already stored (never overwritten). A new
    xorb must fit the quota of the token's namespace (QuotaExceeded) before it is stored.
    The body is verified first: only a client that holds the xorb's bytes learns whether
    the server has it (else "already stored" would answer for content of any repo)."""
    expected = parse_hash(xorb_hex)
    xorb = parse_xorb(body, expected)
    with factory() as session:
        if session.get(XetXorb, xorb_hex) is not None:
            return False
        if quota is not None:
            quota.check(session, Upload(raw_bytes=len(body)))
    blobs.put(xorb_key(xorb_hex), [xorb.body], size=len(xorb.body))
    row = {
        "hash": xorb_hex,
        "num_chunks": len(xorb.chunks),
        "raw_bytes": xorb.raw_bytes,
        "stored_bytes": len(xorb.body),
        "chunk_index": pack_index(xorb.chunks),
    }
    with write_transaction(factory) as session:
        insert_ignore(session, XetXorb, [row], ["hash"])
    return True


def parse_hash(text: str) -> bytes:
    """A hash from a URL path; 400 for anything malformed."""
    try:
        return hashing.from_hex(text.lower())
    except ValueError:
        raise BadRequest(f"Invalid xet hash {text!r}") from None


def load_xorbs(session: Session, hashes: Iterable[bytes]) -> dict[bytes, list[ChunkRef]]:
    """The chunk index of each known xorb among hashes (unknown ones are absent)."""
    wanted = {hashing.to_hex(h): h for h in hashes}
    rows = session.scalars(select(XetXorb).where(XetXorb.hash.in_(list(wanted))))
    return {wanted[row.hash]: unpack_index(row.chunk_index) for row in rows}


@dataclass(frozen=True)
class VerifiedFile:
    hash_hex: str
    size: int
    sha256: str
    terms: list[Slice]
    dedup_chunks: list[tuple[str, str]]  # (chunk, xorb) pairs for the global dedup index


def verify_file(entry: FileEntry, xorbs: dict[bytes, list[ChunkRef]]) -> VerifiedFile:
    """Check every term of one file against the server's chunk index; InvalidShard on a lie."""
    name = hashing.to_hex(entry.hash)
    if entry.sha256 is None:
        raise InvalidShard(f"file {name} carries no sha256 metadata; upgrade hf_xet")
    slices: list[Slice] = []
    chunk_list: list[tuple[bytes, int]] = []
    dedup: list[tuple[str, str]] = []
    for term in entry.terms:
        refs = _term_chunks(name, term, xorbs)
        slices.append(
            Slice(term.xorb, term.start, term.end, tuple((c.raw_len, c.start, c.end) for c in refs))
        )
        xorb_hex = hashing.to_hex(term.xorb)
        for ref in refs:
            if not chunk_list or hashing.dedup_eligible(ref.hash):
                dedup.append((hashing.to_hex(ref.hash), xorb_hex))
            chunk_list.append((ref.hash, ref.raw_len))
    if hashing.file_hash(chunk_list) != entry.hash:
        raise InvalidShard(f"file {name}: its terms hash to another file hash")
    sha256 = entry.sha256_hex
    assert sha256 is not None
    return VerifiedFile(name, entry.size, sha256, slices, dedup)


def _term_chunks(name: str, term: Term, xorbs: dict[bytes, list[ChunkRef]]) -> list[ChunkRef]:
    chunks = xorbs.get(term.xorb)
    if chunks is None:
        raise UnknownXorb(
            f"file {name} references xorb {hashing.to_hex(term.xorb)}, never uploaded"
        )
    if not 0 <= term.start < term.end <= len(chunks):
        raise InvalidShard(f"file {name}: chunk range {term.start}-{term.end} is out of bounds")
    refs = chunks[term.start : term.end]
    if sum(c.raw_len for c in refs) != term.unpacked:
        raise InvalidShard(f"file {name}: a term's unpacked length does not match its chunks")
    if term.verification != hashing.verification_hash([c.hash for c in refs]):
        raise InvalidShard(f"file {name}: a term's verification hash is wrong or missing")
    return refs


def register_shard(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    repo_id: int,
    body: bytes,
    quota: RepoQuota | None = None,
) -> int:
    """Verify a shard and register its files for repo_id: 1 if anything was new, else 0.
    The files new to the repo's namespace must fit its quota, checked before anything of the
    shard is stored."""
    shard = parse_shard(body)
    files = [f for f in shard.files if f.terms]  # the empty file needs no registration
    with factory() as session:
        xorbs = load_xorbs(session, {t.xorb for f in files for t in f.terms} | set(shard.xorbs))
        missing = [h for h in shard.xorbs if h not in xorbs]
        if missing:
            raise UnknownXorb(f"shard lists xorb {hashing.to_hex(missing[0])}, never uploaded")
        verified = [verify_file(f, xorbs) for f in files]
        if quota is not None:
            quota.check(session, Upload(lfs={v.sha256: v.size for v in verified}))
        known = {
            row.hash: row.sha256
            for row in session.scalars(
                select(XetFile).where(XetFile.hash.in_([v.hash_hex for v in verified]))
            )
        }
    with ThreadPoolExecutor(SHA256_WORKERS, thread_name_prefix="xet-sha256") as pool:
        list(pool.map(lambda item: _check_sha256(blobs, item, known.get(item.hash_hex)), verified))
    with write_transaction(factory) as session:
        _record(session, repo_id, verified)
    return 1 if any(v.hash_hex not in known for v in verified) else 0


def _check_sha256(blobs: BlobStore, item: VerifiedFile, known_sha256: str | None) -> None:
    """The sha256 a commit will name must be the content's: recompute it from the xorbs
    (once per file; afterwards the stored value is the reference)."""
    if known_sha256 is not None:
        if known_sha256 != item.sha256:
            raise InvalidShard(f"file {item.hash_hex}: wrong sha256 {item.sha256}")
        return
    key = recipe_key(item.hash_hex)
    if not exists(blobs, key):
        data = pack_recipe(item.terms)
        blobs.put(key, [data], size=len(data))
    digest = hashlib.sha256()
    for piece in prefetched(stream_file(blobs, item.hash_hex, 0, None)):
        digest.update(piece)
    if digest.hexdigest() != item.sha256:
        raise InvalidShard(
            f"file {item.hash_hex}: content sha256 is {digest.hexdigest()}, "
            f"not the declared {item.sha256}"
        )


def prefetched(pieces: Iterator[bytes], depth: int = 16) -> Iterator[bytes]:
    """Consume pieces in a helper thread, `depth` ahead: reading and decoding xorbs overlaps
    hashing (both release the GIL), which is the critical path of a shard upload."""
    buffer: queue.Queue[bytes | BaseException | None] = queue.Queue(depth)

    def produce() -> None:
        try:
            for piece in pieces:
                buffer.put(piece)
            buffer.put(None)
        except BaseException as exc:
            buffer.put(exc)

    threading.Thread(target=produce, daemon=True).start()
    while (item := buffer.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


def _record(session: Session, repo_id: int, verified: list[VerifiedFile]) -> None:
    insert_ignore(
        session,
        XetFile,
        [{"hash": v.hash_hex, "size": v.size, "sha256": v.sha256} for v in verified],
        ["hash"],
    )
    insert_ignore(
        session,
        LfsObject,
        [{"oid": v.sha256, "size": v.size, "xet_hash": v.hash_hex} for v in verified],
        ["oid"],
    )
    for v in verified:  # objects first uploaded by LFS become readable by Xet clients too
        session.execute(
            update(LfsObject)
            .where(LfsObject.oid == v.sha256, LfsObject.xet_hash.is_(None))
            .values(xet_hash=v.hash_hex)
        )
    insert_ignore(
        session,
        RepoLfsObject,
        [{"repo_id": repo_id, "oid": v.sha256} for v in verified],
        ["repo_id", "oid"],
    )
    rows = {
        chunk: {"chunk_hash": chunk, "xorb_hash": xorb, "file_hash": v.hash_hex}
        for v in verified
        for chunk, xorb in v.dedup_chunks
    }
    insert_ignore(session, XetDedupChunk, list(rows.values()), ["chunk_hash"])
