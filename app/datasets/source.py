"""Reading the files of one revision through the repo model: never a walk of object storage.

Large files are read with byte ranges through the repo model's content reader, whatever carried
them (LFS or Xet), so a parquet reader fetches its footer and the row groups it needs, nothing
more. Regular files are git blobs, small by construction, read whole.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.blobs import BlobStore
from app.cards.metadata import CardError, parse_yaml
from app.datasets.engine import Source
from app.repos import content
from app.repos.models import LfsObject
from app.repos.service import FileEntry, find_entry, list_entries

README = "README.md"
MAX_SMALL_FILE = 16 * 1024 * 1024  # README and metadata files are read whole; bigger are refused
LOOKUP_BATCH = 500  # LFS oids per query when looking up Xet hashes


@dataclass(frozen=True)
class Revision:
    """One resolved revision of a dataset repo: what every viewer answer is computed from."""

    dataset: str
    repo_id: int
    commit_sha: str
    tree_sha: str
    is_default_head: bool = False  # the head of `main`: the revision the parquet export follows


class RangedReader(io.RawIOBase):
    """A seekable read-only file over a large file in the blob store: each read is one ranged
    `open`, so a reader that seeks (pyarrow's parquet reader) fetches only what it reads."""

    def __init__(self, blobs: BlobStore, located: content.Content):
        self.blobs = blobs
        self.located = located
        self.position = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.located.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        want = min(len(buffer), self.located.size - self.position)
        if want <= 0:
            return 0
        filled = 0
        for chunk in content.open_content(self.blobs, self.located, self.position, want):
            buffer[filled : filled + len(chunk)] = chunk
            filled += len(chunk)
        self.position += filled
        return filled


def open_file(blobs: BlobStore, entry: FileEntry, read_ahead: int) -> Source:
    """A local path when the store keeps the object on disk (zero copy), else a ranged reader
    fetching read_ahead bytes per storage request (0: exactly what is read); a regular git blob
    is read whole."""
    located = content.locate(blobs, entry)
    if located.kind == "git":
        return io.BytesIO(content.read_content(blobs, located))
    local: Path | None = content.local_file(blobs, located)
    if local is not None:
        return str(local)
    if read_ahead <= 0:
        return RangedReader(blobs, located)
    return io.BufferedReader(RangedReader(blobs, located), buffer_size=read_ahead)


def read_small(blobs: BlobStore, entry: FileEntry) -> bytes:
    """The whole content of a small file (README, metadata.csv)."""
    if entry.size > MAX_SMALL_FILE:
        raise ValueError(f"{entry.path} is larger than {MAX_SMALL_FILE} bytes")
    return content.read_content(blobs, content.locate(blobs, entry))


def content_id(entry: FileEntry) -> str:
    """What identifies a file's bytes across repos and revisions: its LFS sha256, else its
    git blob sha1."""
    return entry.lfs_oid or entry.oid


def file_entries(session: Session, revision: Revision) -> dict[str, FileEntry]:
    """Every file of the revision by path, from the database index, each LFS file with the
    Xet hash of its content when it came through Xet (the tree row may not carry it: the
    download route looks it up the same way, app/hub/downloads.py `locate`)."""
    files = {e.path: e for e in list_entries(session, revision.tree_sha, recursive=True)}
    files = {path: e for path, e in files.items() if not e.is_dir}
    missing = sorted({e.lfs_oid for e in files.values() if e.lfs_oid and e.xet_hash is None})
    hashes: dict[str, str] = {}
    for start in range(0, len(missing), LOOKUP_BATCH):
        batch = missing[start : start + LOOKUP_BATCH]
        query = select(LfsObject.oid, LfsObject.xet_hash).where(
            LfsObject.oid.in_(batch), LfsObject.xet_hash.is_not(None)
        )
        hashes.update({oid: xet for oid, xet in session.execute(query) if xet})
    return {
        path: replace(e, xet_hash=hashes.get(e.lfs_oid or "", e.xet_hash))
        for path, e in files.items()
    }


def card_data(session: Session, blobs: BlobStore, revision: Revision) -> dict[str, object]:
    """The README's YAML front matter at this revision; an unreadable card counts as empty,
    as the Hub shows a dataset whose card is broken."""
    entry = find_entry(session, revision.tree_sha, README)
    if entry is None or entry.is_dir or entry.size > MAX_SMALL_FILE:
        return {}
    try:
        return parse_yaml(read_small(blobs, entry).decode("utf-8", "replace"))
    except CardError:
        return {}
