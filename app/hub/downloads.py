"""File downloads: `HEAD`/`GET /{prefix}{id}/resolve/{rev}/{path}` and `/raw/` (hf-protocol.md §9).

`resolve_headers` builds every metadata header of one file (with the Xet hooks of
hf-protocol.md §9.3); the bytes come from the repo model's one content reader
(`app.repos.content`), whatever carried them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.auth.permissions import Principal
from app.blobs import BlobStore
from app.config import Settings
from app.db.engine import write_transaction
from app.errors import EntryNotFound, RangeNotSatisfiable
from app.http import base_url
from app.repos import content
from app.repos.models import Repo
from app.repos.service import FileEntry, find_entry, get_commit, get_repo, resolve_revision

# A model download is one GET of config.json, or of the weights when there is no config
# (how huggingface.co counts; HfFileSystem block reads and resumes do not count).
COUNTED_CONFIG = "config.json"
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".onnx", ".pt", ".pth", ".ckpt", ".h5")


@dataclass(frozen=True)
class Resolved:
    repo: Repo
    commit_sha: str
    tree_sha: str
    entry: FileEntry


def locate(
    session: Session,
    principal: Principal,
    repo_type: str,
    repo_id: str,
    revision: str,
    path: str,
) -> Resolved:
    """The file at path of revision; a missing file is EntryNotFound carrying X-Repo-Commit,
    so the client caches the miss under that commit (file_download.py:1771-1786)."""
    repo = get_repo(session, principal, repo_type, repo_id, content=True)
    sha = resolve_revision(session, repo, revision)
    tree_sha = get_commit(session, sha).tree_sha
    entry = find_entry(session, tree_sha, path)
    if entry is None or entry.is_dir:
        raise EntryNotFound(f"Entry not found: {path}", headers={"X-Repo-Commit": sha})
    if entry.lfs_oid is not None and entry.xet_hash is None:
        entry = replace(entry, xet_hash=content.xet_hash_of(session, entry.lfs_oid))
    return Resolved(repo, sha, tree_sha, entry)


def content_disposition(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    ascii_name = name.encode("ascii", "replace").decode().replace('"', "_")
    return f"inline; filename*=UTF-8''{quote(name, safe='')}; filename=\"{ascii_name}\""


def resolve_headers(entry: FileEntry, commit_sha: str) -> dict[str, str]:
    """Every metadata header of one file (§9.1): the client needs X-Repo-Commit and an ETag,
    and the real size in X-Linked-Size for large files (a 0 there caches an empty file)."""
    headers = {
        "X-Repo-Commit": commit_sha,
        "Accept-Ranges": "bytes",
        "Content-Disposition": content_disposition(entry.path),
    }
    if entry.lfs_oid is None:
        headers["ETag"] = f'"{entry.oid}"'
    else:
        etag = f'"{entry.lfs_oid}"'
        headers.update({"ETag": etag, "X-Linked-Etag": etag, "X-Linked-Size": str(entry.size)})
    return headers


def xet_headers(
    base_url: str, repo_type: str, repo_id: str, commit: str, xet_hash: str
) -> dict[str, str]:
    """What a resolve answer adds for a Xet-backed file: with both headers a Xet client reads
    from CAS through a read token of this exact commit; other clients ignore them."""
    url = f"{base_url}/api/{repo_type}s/{repo_id}/xet-read-token/{commit}"
    return {"X-Xet-Hash": xet_hash, "Link": f'<{url}>; rel="xet-auth"'}


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` -> inclusive (start, end); None serves the whole
    file (absent, multi-range or malformed, as RFC 9110 allows); a start past the end is 416."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    first, dash, last = spec.strip().partition("-")
    if unit.strip().lower() != "bytes" or "," in spec or not dash:
        return None
    try:
        if not first.strip():
            start, end = size - int(last), size - 1
            if int(last) <= 0:
                start = size
        else:
            start = int(first)
            end = int(last) if last.strip() else size - 1
    except ValueError:
        return None
    if start >= size:
        raise RangeNotSatisfiable(
            f"Range {header!r} starts past the end of the file ({size} bytes)",
            headers={"Content-Range": f"bytes */{size}"},
        )
    if end < start:
        return None
    return max(start, 0), min(end, size - 1)


def _etag_matches(request: Request, etag: str) -> bool:
    wanted = request.headers.get("if-none-match")
    if not wanted:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in wanted.split(",")}
    return "*" in tags or etag in tags


def file_response(
    request: Request, blobs: BlobStore, settings: Settings, resolved: Resolved, *, raw: bool
) -> Response:
    """The answer to HEAD/GET on one file. raw serves the git blob itself (for a large file,
    its LFS pointer), as huggingface.co's /raw/ does."""
    entry = resolved.entry
    if raw and entry.lfs_oid is not None:
        entry = FileEntry(
            entry.path, entry.kind, entry.mode, entry.oid, entry.lfs_pointer_size or 0
        )
    headers = resolve_headers(entry, resolved.commit_sha)
    if entry.xet_hash is not None:
        repo = resolved.repo
        base = base_url(request, settings)
        headers.update(
            xet_headers(base, repo.type, repo.repo_id, resolved.commit_sha, entry.xet_hash)
        )
    if _etag_matches(request, headers["ETag"]):
        return Response(status_code=304, headers=headers)
    if entry.lfs_oid is not None and entry.xet_hash is None and settings.s3_presign_downloads:
        url = content.download_url(blobs, content.locate(blobs, entry))  # no Xet: an LFS blob
        if url is not None:
            # Another origin: the client reads the metadata from this 302 itself (§9.1).
            return Response(status_code=302, headers={**headers, "Location": url})
    byte_range = parse_range(request.headers.get("range"), entry.size)
    status, start, length = 200, 0, entry.size
    if byte_range is not None:
        status, start, length = 206, byte_range[0], byte_range[1] - byte_range[0] + 1
        headers["Content-Range"] = f"bytes {byte_range[0]}-{byte_range[1]}/{entry.size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    media = "application/octet-stream"
    stream = content.open_content(blobs, content.locate(blobs, entry), start, length)
    if entry.lfs_oid is None:  # a git blob: one small piece, sent with its length
        return Response(b"".join(stream), status, headers, media_type=media)
    return StreamingResponse(stream, status, headers, media_type=media)


def counts_as_download(session: Session, resolved: Resolved, request: Request) -> bool:
    """GET of config.json, or of top-level weights when the repo has no config.json."""
    if request.method != "GET" or resolved.repo.type != "model":
        return False
    byte_range = request.headers.get("range", "").replace(" ", "")
    if byte_range and not byte_range.startswith("bytes=0-"):
        return False
    path = resolved.entry.path
    if path == COUNTED_CONFIG:
        return True
    if "/" in path or not path.endswith(WEIGHT_SUFFIXES):
        return False
    return find_entry(session, resolved.tree_sha, COUNTED_CONFIG) is None


def count_download(factory: sessionmaker[Session], repo_id: int) -> None:
    """One UPDATE in its own short transaction: no read-modify-write race, no row loaded."""
    with write_transaction(factory) as session:
        session.execute(update(Repo).where(Repo.id == repo_id).values(downloads=Repo.downloads + 1))
