"""Pickle scanning at commit time, and the recorded verdicts for the read side.

`PickleScans` follows every ref move (a consumer of the repo model's events, `app.repos.events`)
and scans the pickle files the new revision adds; the move's own thread delivers it right after
the commit, so the API's answer to a commit or a push follows its verdicts. A scan runs outside
any transaction: it reads the file from the blob store and must not hold SQLite's write lock.
Until a file has a verdict, inference refuses it like an unsafe one.
A verdict never refuses a commit (as on huggingface.co): it is recorded, shown in `model_info`
and on the file page, and the inference pool refuses to load anything but `safe`.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import BlobStore
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.repos import content
from app.repos.history import changed_files, chunks
from app.repos.models import Commit, RepoEvent, TreeEntry
from app.repos.service import FileEntry
from app.security.models import PickleScan
from app.security.scanner import (
    ERROR,
    PICKLE_SUFFIXES,
    SAFE,
    SCANNER,
    RangeFile,
    ScanInput,
    Verdict,
    is_pickle_path,
    scan,
)

log = logging.getLogger(__name__)
BACKFILL_BATCH = 100  # files scanned per verdict transaction by `atrium scan-pickles`


def content_key(lfs_oid: str | None, oid: str) -> str:
    """What a verdict is stored under: the LFS sha256, else the git blob sha1."""
    return lfs_oid or oid


class PickleScans:
    """The consumer of ref moves that scans what a new revision adds."""

    name = "pickle-scans"

    def __init__(self, factory: sessionmaker[Session], blobs: BlobStore):
        self.factory = factory
        self.blobs = blobs

    def handle(self, event: RepoEvent) -> None:
        if event.new is None:
            return
        with self.factory() as session:
            new_tree = session.scalar(select(Commit.tree_sha).where(Commit.sha == event.new))
            old_tree = None
            if event.old is not None:
                old_tree = session.scalar(select(Commit.tree_sha).where(Commit.sha == event.old))
            if new_tree is None:
                return
            files = [
                f for f in changed_files(session, old_tree, new_tree) if is_pickle_path(f.path)
            ]
        scan_new_files(self.factory, self.blobs, files)


def scan_new_files(
    factory: sessionmaker[Session], blobs: BlobStore, files: Iterable[FileEntry]
) -> None:
    """Scan the pickle files among files whose content has no verdict yet."""
    wanted = {
        content_key(f.lfs_oid, f.oid): f
        for f in files
        if f.kind == "blob" and is_pickle_path(f.path)
    }
    if not wanted:
        return
    with factory() as session:  # closed before scanning: no connection held meanwhile
        known = set(verdicts(session, wanted))
        todo = {key: row for key, row in wanted.items() if key not in known}
        located = {key: content.locate(blobs, f, session) for key, f in todo.items()}
    found = {key: _scan_row(blobs, todo[key], c) for key, c in located.items()}
    if found:
        record(factory, found)


def record(factory: sessionmaker[Session], found: dict[str, Verdict]) -> None:
    values = [
        {"oid": key, "status": v.status, "imports": v.imports, "detail": v.detail}
        | {"scanner": SCANNER}
        for key, v in found.items()
    ]
    with write_transaction(factory) as session:
        insert_ignore(session, PickleScan, values, ["oid"])


def _scan_row(blobs: BlobStore, row: FileEntry, located: content.Content) -> Verdict:
    """The verdict on one file. Content missing from the store is an `error` verdict; a store
    that fails to answer raises (StorageUnavailable): a verdict is kept for good, and must
    not record an outage."""
    try:
        verdict = scan(_open(blobs, located), row.path)
    except content.ContentMissing:
        verdict = Verdict(ERROR, detail="the file is missing from storage")
    if not verdict.safe:
        log.warning("pickle scan of %s (%s): %s %s", row.path, row.oid, verdict.status,
                    verdict.imports or verdict.detail)  # fmt: skip
    return verdict


def _open(blobs: BlobStore, located: content.Content) -> ScanInput:
    """The file's bytes: a regular file is a small git blob, read whole; a large file is read
    by ranges, whatever carried it (LFS, or the CAS when it only came through Xet)."""
    if located.kind == "git":
        return io.BytesIO(content.read_content(blobs, located))
    return RangeFile(lambda start, n: content.open_content(blobs, located, start, n), located.size)


def verdicts(session: Session, keys: Iterable[str]) -> dict[str, PickleScan]:
    out: dict[str, PickleScan] = {}
    for batch in chunks(set(keys)):
        out.update(
            (row.oid, row)
            for row in session.scalars(select(PickleScan).where(PickleScan.oid.in_(batch)))
        )
    return out


def reason(scan: PickleScan) -> str:
    """One line a person can act on: the imports, or why the scan failed."""
    if scan.status == SAFE:
        return "safe"
    if scan.imports:
        return "unsafe pickle imports: " + ", ".join(scan.imports)
    return f"pickle scan failed ({scan.detail}); treated as unsafe"


def file_status(scan: PickleScan | None) -> dict[str, Any] | None:
    """`securityFileStatus` of a tree entry (hf-protocol.md §5.3; hf_api.py BlobSecurityInfo
    reads `status`, `avScan` and `pickleImportScan`). No virus scanner runs here."""
    if scan is None:
        return None
    level = "innocuous" if scan.status == SAFE else "dangerous"
    return {
        "status": "safe" if scan.status == SAFE else "unsafe",
        "avScan": None,
        "pickleImportScan": {
            "highestSafetyLevel": level,
            "imports": [_import_json(name) for name in scan.imports],
            "scanner": scan.scanner,
            **({"error": scan.detail} if scan.status == ERROR else {}),
        },
    }


def _import_json(name: str) -> dict[str, str]:
    module, _, attr = name.rpartition(".")
    return {"module": module, "name": attr, "safety": "dangerous"}


class ContentFile(Protocol):
    """What the summaries need of a file (a FileEntry, a listing row): path and content ids."""

    @property
    def path(self) -> str: ...
    @property
    def oid(self) -> str: ...
    @property
    def lfs_oid(self) -> str | None: ...


def repo_status(session: Session, files: Iterable[ContentFile]) -> dict[str, Any]:
    """`securityRepoStatus` of `model_info(securityStatus=True)`: the pickle files of the
    revision that are not safe; `scansDone` is false while one has no verdict."""
    pickles = [f for f in files if is_pickle_path(f.path)]
    found = verdicts(session, (content_key(f.lfs_oid, f.oid) for f in pickles))
    issues = []
    for f in pickles:
        verdict = found.get(content_key(f.lfs_oid, f.oid))
        if verdict is not None and verdict.status != SAFE:
            issues.append(
                {
                    "path": f.path,
                    "level": "unsafe",
                    "status": verdict.status,
                    "pickleImports": [_import_json(name) for name in verdict.imports],
                    "reason": reason(verdict),
                }
            )
    done = all(content_key(f.lfs_oid, f.oid) in found for f in pickles)
    return {"scansDone": done, "filesWithIssues": issues}


def file_statuses(session: Session, files: Iterable[ContentFile]) -> dict[str, dict[str, Any]]:
    """path -> `securityFileStatus` of the scanned pickle files among files."""
    pickles = [f for f in files if is_pickle_path(f.path)]
    found = verdicts(session, (content_key(f.lfs_oid, f.oid) for f in pickles))
    out = {}
    for f in pickles:
        status = file_status(found.get(content_key(f.lfs_oid, f.oid)))
        if status is not None:
            out[f.path] = status
    return out


def scan_of(session: Session, file: ContentFile) -> PickleScan | None:
    """The verdict on one file, or None when it is not a pickle file or has none yet."""
    if not is_pickle_path(file.path):
        return None
    return session.get(PickleScan, content_key(file.lfs_oid, file.oid))


def scan_unscanned(factory: sessionmaker[Session], blobs: BlobStore) -> int:
    """Scan every indexed pickle file content that has no verdict (files committed before
    scanning existed); returns how many were scanned. Safe while the server runs."""
    suffixes = [func.lower(TreeEntry.name).like(f"%{suffix}") for suffix in PICKLE_SUFFIXES]
    with factory() as session:
        rows = session.scalars(select(TreeEntry).where(TreeEntry.kind == "blob", or_(*suffixes)))
        unique = {content_key(row.lfs_oid, row.oid): row for row in rows}
        known = verdicts(session, unique)
    missing = [FileEntry.of(row, row.name) for key, row in unique.items() if key not in known]
    for start in range(0, len(missing), BACKFILL_BATCH):
        scan_new_files(factory, blobs, missing[start : start + BACKFILL_BATCH])
    return len(missing)
