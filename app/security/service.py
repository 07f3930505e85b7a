"""Pickle scanning at commit time, and the recorded verdicts for the read side.

`scan_new_files` runs on every write path, between storing a commit's objects and the
transaction that moves the ref (`app.repos.commits.create_commit`, `app.git.push.Push`), so a
revision is never visible before its pickle files have a verdict. It runs outside any
transaction: a scan reads the file from the blob store and must not hold SQLite's write lock.
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
from app.blobs.base import BlobNotFound
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.git.history import chunks
from app.repos.gitobjects import load_object
from app.repos.models import TreeEntry
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
from app.xet.links import open_xet_stream, xet_only_object

log = logging.getLogger(__name__)
BACKFILL_BATCH = 100  # files scanned per verdict transaction by `atrium scan-pickles`


def content_key(lfs_oid: str | None, oid: str) -> str:
    """What a verdict is stored under: the LFS sha256, else the git blob sha1."""
    return lfs_oid or oid


def scan_new_files(
    factory: sessionmaker[Session], blobs: BlobStore, rows: Iterable[TreeEntry]
) -> None:
    """Scan the pickle files among a commit's new tree rows whose content has no verdict yet."""
    wanted = {
        content_key(row.lfs_oid, row.oid): row
        for row in rows
        if row.kind == "blob" and is_pickle_path(row.name)
    }
    if not wanted:
        return
    with factory() as session:  # closed before scanning: no connection held meanwhile
        known = set(verdicts(session, wanted))
        todo = {key: row for key, row in wanted.items() if key not in known}
        xet: dict[str, str | None] = {}
        for key, row in todo.items():
            if row.lfs_oid is not None:
                xet[key] = xet_only_object(session, blobs, row.lfs_oid)
    found = {key: _scan_row(blobs, row, xet.get(key)) for key, row in todo.items()}
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


def _scan_row(blobs: BlobStore, row: TreeEntry, xet_hash: str | None) -> Verdict:
    """The verdict on one file. Content missing from the store is an `error` verdict; a store
    that fails to answer raises (StorageUnavailable): a verdict is kept for good, and must
    not record an outage."""
    try:
        verdict = scan(_open(blobs, row, xet_hash), row.name)
    except BlobNotFound as exc:
        verdict = Verdict(ERROR, detail=f"the file is missing from storage: {exc.message}")
    if not verdict.safe:
        log.warning("pickle scan of %s (%s): %s %s", row.name, row.oid, verdict.status,
                    verdict.imports or verdict.detail)  # fmt: skip
    return verdict


def _open(blobs: BlobStore, row: TreeEntry, xet_hash: str | None) -> ScanInput:
    """The file's bytes: a regular file is a small git blob, read whole; a large file is read
    by ranges from `lfs/<oid>`, or from the CAS when it only came through Xet."""
    if row.lfs_oid is None:
        return io.BytesIO(load_object(blobs, row.oid).as_raw_string())
    if xet_hash is not None:
        return RangeFile(lambda start, n: open_xet_stream(blobs, xet_hash, start, n), row.size)
    key = f"lfs/{row.lfs_oid}"
    return RangeFile(lambda start, n: blobs.open(key, start, n), row.size)


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
    missing = [row for key, row in unique.items() if key not in known]
    for start in range(0, len(missing), BACKFILL_BATCH):
        scan_new_files(factory, blobs, missing[start : start + BACKFILL_BATCH])
    return len(missing)
