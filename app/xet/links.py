"""The hub-side hooks of Xet in file downloads (xet-protocol.md §3, §8)."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.blobs import BlobStore
from app.repos.models import LfsObject
from app.xet.reconstruction import stream_file


def xet_hash_of(session: Session, lfs_oid: str) -> str | None:
    """The Xet file holding this LFS object's content, if it came through (or was put in) Xet."""
    return session.scalar(select(LfsObject.xet_hash).where(LfsObject.oid == lfs_oid))


def xet_headers(
    base_url: str, repo_type: str, repo_id: str, commit: str, xet_hash: str
) -> dict[str, str]:
    """What a resolve answer adds for a Xet-backed file: with both headers a Xet client reads
    from CAS through a read token of this exact commit; other clients ignore them."""
    url = f"{base_url}/api/{repo_type}s/{repo_id}/xet-read-token/{commit}"
    return {"X-Xet-Hash": xet_hash, "Link": f'<{url}>; rel="xet-auth"'}


def open_xet_stream(
    blobs: BlobStore, xet_hash: str, start: int, length: int | None
) -> Iterator[bytes]:
    """Plain bytes of a Xet file for clients that do not speak Xet (git-lfs, curl, browsers)."""
    return stream_file(blobs, xet_hash, start, length)


def xet_only_object(session: Session, blobs: BlobStore, oid: str) -> str | None:
    """The Xet file of an LFS object that has no `lfs/<oid>` blob (it came only through Xet),
    else None: the LFS download route then streams `open_xet_stream` instead of the blob."""
    xet_hash = xet_hash_of(session, oid)
    if xet_hash is None or blobs.size(f"lfs/{oid}") is not None:
        return None
    return xet_hash
