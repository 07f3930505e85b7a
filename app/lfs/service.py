"""LFS objects: receive uploads (whole or in parts), verify them, and link them to repos.

An object is stored once under `lfs/<sha256>` for every repo; `RepoLfsObject` records which
repos were given it. A repo is linked only after its uploader sent bytes that hash to the
oid, even when the object was stored already for another repo: knowing a sha256 must never
be enough to reach somebody else's private file through a commit of one's own.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from itertools import chain
from typing import Protocol, runtime_checkable

from botocore.exceptions import ClientError
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import BlobStore
from app.blobs.base import HashingReader
from app.blobs.keys import lfs_key
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.errors import BadRequest
from app.repos.models import LfsObject, RepoLfsObject

PARTS_PREFIX = "lfs-parts/"  # parts sent through Atrium, deleted once assembled
STAGING_PREFIX = "lfs-staging/"  # S3 multipart targets, verified before becoming lfs/<oid>


@runtime_checkable
class DirectPartStore(Protocol):
    """A store whose clients upload parts straight to it (S3): bytes bypass the API."""

    def create_multipart(self, key: str) -> str: ...

    def presigned_part_url(self, key: str, upload_id: str, part: int, expires_s: int) -> str: ...

    def complete_multipart(self, key: str, upload_id: str, etags: list[str]) -> None: ...

    def copy(self, source: str, target: str) -> None: ...


def new_upload_id() -> str:
    return secrets.token_urlsafe(18)


def link_object(factory: sessionmaker[Session], repo_id: int, oid: str, size: int) -> None:
    with write_transaction(factory) as session:
        insert_ignore(session, LfsObject, [{"oid": oid, "size": size}], ["oid"])
        insert_ignore(
            session, RepoLfsObject, [{"repo_id": repo_id, "oid": oid}], ["repo_id", "oid"]
        )


def receive_object(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    repo_id: int,
    oid: str,
    size: int,
    chunks: Iterable[bytes],
) -> None:
    """Store an uploaded object (verified by the store), or only hash it when it is stored
    already; either way the bytes prove the uploader has the content before the link."""
    with factory() as session:
        known = session.get(LfsObject, oid)
    if known is not None and known.size == size and blobs.size(lfs_key(oid)) == size:
        check_content(chunks, oid, size)
    else:
        blobs.put(lfs_key(oid), chunks, sha256=oid, size=size)
    link_object(factory, repo_id, oid, size)


def check_content(chunks: Iterable[bytes], oid: str, size: int) -> None:
    """HashMismatch (400) unless the chunks are `size` bytes hashing to `oid`."""
    reader = HashingReader(oid, size)
    for chunk in chunks:
        reader.feed(chunk)
    reader.verify()


def part_key(upload_id: str, number: int) -> str:
    return f"{PARTS_PREFIX}{upload_id}/{number:05d}"


def receive_part(blobs: BlobStore, upload_id: str, number: int, chunks: Iterable[bytes]) -> str:
    """Store one part sent through Atrium; its sha256 is the ETag the client echoes back."""
    return blobs.put(part_key(upload_id, number), chunks).sha256


def assemble_parts(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    repo_id: int,
    oid: str,
    size: int,
    upload_id: str,
    count: int,
) -> None:
    """Concatenate parts 1..count into lfs/<oid>, verifying sha256 and size as they stream;
    the parts are deleted whatever the outcome (a failed upload starts again from batch)."""
    keys = [part_key(upload_id, n) for n in range(1, count + 1)]
    try:
        missing = [n for n, key in enumerate(keys, start=1) if blobs.size(key) is None]
        if missing:
            raise BadRequest(f"multipart upload of {oid}: parts {missing} were never uploaded")
        blobs.put(lfs_key(oid), _concat(blobs, keys), sha256=oid, size=size)
    finally:
        for key in keys:
            blobs.delete(key)
    link_object(factory, repo_id, oid, size)


def complete_direct(
    factory: sessionmaker[Session],
    store: DirectPartStore,
    blobs: BlobStore,
    repo_id: int,
    oid: str,
    size: int,
    staging: tuple[str, str],
    etags: list[str],
) -> None:
    """Finish an S3 multipart upload at its staging key, hash it (S3 cannot check a
    whole-object sha256, so this server reads it once), then copy it to lfs/<oid> inside S3."""
    key, s3_upload_id = staging
    try:
        store.complete_multipart(key, s3_upload_id, etags)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise BadRequest(f"multipart upload of {oid} could not be completed ({code})") from None
    try:
        check_content(blobs.open(key), oid, size)
        store.copy(key, lfs_key(oid))
    finally:
        blobs.delete(key)
    link_object(factory, repo_id, oid, size)


def _concat(blobs: BlobStore, keys: list[str]) -> Iterator[bytes]:
    return chain.from_iterable(blobs.open(key) for key in keys)
