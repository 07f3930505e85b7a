"""The `refs/convert/parquet` revision: every split of the default branch as parquet files,
laid out `{config}/{split}/{n:04d}.parquet` like the Hub's parquet export.

Parquet files of the repo are referenced by their LFS oid (no copy); conversions of csv/json/txt
files are put in the blob store as LFS objects of the repo. The export is a commit whose title
names the source commit, so it is made once per head of the default branch; its parent is the
previous export, as on the Hub. The ref moves by compare-and-swap like any other (a concurrent
export simply loses the race and finds the work done).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import BlobStore
from app.blobs.keys import lfs_key
from app.datasets.layout import FOLDER_FORMATS, DatasetLayout
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.repos.commits import (
    Author,
    CommitBuilder,
    index_commit,
    make_commit_object,
)
from app.repos.gitobjects import lfs_pointer_blob, store_objects
from app.repos.models import Commit, LfsObject, Ref, Repo, RepoLfsObject
from app.repos.refs import move_ref

log = logging.getLogger("atrium.datasets")
CONVERT_REF = "refs/convert/parquet"
BOT = Author(name="parquet-converter", email="parquet-converter@users.atrium")
TITLE_PREFIX = "Update parquet files (from "
HASH_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ExportFile:
    """One file of the export: an LFS object (oid, size) at its path."""

    path: str
    oid: str
    size: int


def export_title(source_sha: str) -> str:
    return f"{TITLE_PREFIX}{source_sha})"


def is_exported(session: Session, repo_id: int, source_sha: str) -> bool:
    head = session.scalar(
        select(Ref.commit_sha).where(Ref.repo_id == repo_id, Ref.name == CONVERT_REF)
    )
    if head is None:
        return False
    return session.scalar(select(Commit.title).where(Commit.sha == head)) == export_title(
        source_sha
    )


def export_paths(layout: DatasetLayout) -> list[tuple[str, list[str]]]:
    """`(folder, source paths)` of each exported split; image/audio folders are not exported."""
    return [
        (f"{config.name}/{split.name}", list(split.files))
        for config in layout.configs
        if config.format not in FOLDER_FORMATS
        for split in config.splits
    ]


def store_conversion(blobs: BlobStore, local: Path) -> tuple[str, int]:
    """Put a converted file in the blob store as an LFS object: (sha256, size)."""
    digest = hashlib.sha256()
    with local.open("rb") as handle:
        for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
            digest.update(chunk)
    oid, size = digest.hexdigest(), local.stat().st_size
    if blobs.size(lfs_key(oid)) is None:
        with local.open("rb") as handle:
            chunks = iter(lambda: handle.read(HASH_CHUNK), b"")
            blobs.put(lfs_key(oid), chunks, sha256=oid, size=size)
    return oid, size


def store_bytes(blobs: BlobStore, data: bytes) -> tuple[str, int]:
    """Put a small parquet file (committed as a regular git file) in the store as LFS."""
    oid = hashlib.sha256(data).hexdigest()
    if blobs.size(lfs_key(oid)) is None:
        blobs.put(lfs_key(oid), [data], sha256=oid, size=len(data))
    return oid, len(data)


def commit_export(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    repo_id: int,
    source_sha: str,
    files: list[ExportFile],
) -> str | None:
    """Commit the export of source_sha on refs/convert/parquet; None if another got there."""
    builder = CommitBuilder(session=None, base_tree=None)
    for item in files:
        builder.add(
            item.path,
            lfs_pointer_blob(item.oid, item.size),
            size=item.size,
            lfs=(item.oid, item.size),
        )
    plan = builder.build()
    with write_transaction(factory) as session:
        old = session.scalar(
            select(Ref.commit_sha).where(Ref.repo_id == repo_id, Ref.name == CONVERT_REF)
        )
    commit = make_commit_object(
        plan.tree_sha, [old] if old else [], BOT, export_title(source_sha), ""
    )
    store_objects(blobs, [*plan.objects, commit])
    with write_transaction(factory) as session:
        repo = session.get(Repo, repo_id)
        if repo is None:
            return None
        rows = [{"oid": f.oid, "size": f.size} for f in files]
        insert_ignore(session, LfsObject, rows, ["oid"])
        links = [{"repo_id": repo_id, "oid": f.oid} for f in files]
        insert_ignore(session, RepoLfsObject, links, ["repo_id", "oid"])
        if not move_ref(session, repo, CONVERT_REF, old, commit.id.decode(), cause="export"):
            session.rollback()
            return None
        index_commit(session, repo, commit, plan.rows)
    log.info("exported %s of repo %s to %s", source_sha, repo_id, CONVERT_REF)
    return commit.id.decode()
