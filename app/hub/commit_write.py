"""Preupload and commit routes of the Hub API (hf-protocol.md §6, §11).

`preupload` tells the client, per file, whether it goes inline in the commit (`regular`) or
through LFS/Xet first (`lfs`), and whether `.gitignore` drops it. `commit` reads the NDJSON
body line by line (a commit may inline up to about 1 GB), turns it into the repo model's
operations and hands them to `app.discussions.contribute` (committed on the branch, or on a
new pull request with `create_pr`): every LFS object it names must have been uploaded to this
repo, or nothing changes. Both refuse (413) what would take
the namespace past its storage quota (`app.quotas.service`): preupload from the sizes of the
large files, the commit from its inline files.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pathspec import GitIgnoreSpec
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.audit.service import Actor
from app.auth.permissions import require_write
from app.blobs import BlobStore
from app.blobs.base import MiB
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.deps import BlobsDep, PrincipalDep, SessionDep
from app.discussions.contribute import Change, contribute
from app.errors import BadRequest, PayloadTooLarge
from app.hub.read import api_target, check_repo
from app.hub.write import FactoryDep, api_route, repo_url
from app.quotas.service import Upload, check_upload
from app.repos.commits import AddFile, AddLfsFile, DeletePath, Operation
from app.repos.gitobjects import OID_RE, load_object
from app.repos.listing import Listed, lookup_paths
from app.repos.models import RepoLfsObject
from app.repos.service import (
    get_commit,
    get_repo,
    linked_sizes,
    resolve_revision,
)

router = APIRouter(tags=["hub"])
LFS_MIN_SIZE = 10 * MiB  # huggingface.co stores files of 10 MB and more in LFS
MAX_COMMIT_BODY = 1024 * MiB  # the regular payload huggingface.co accepts in one commit
MAX_HEADER_LINE = 1 * MiB  # the header line: a summary, a description, a parent commit
PREUPLOAD_MAX_FILES = 1000  # the client sends 256 per call (_commit_api.py:748)
PARENT_RE = re.compile(r"^[0-9a-f]{5,40}$")


# --- preupload (§6) ---------------------------------------------------------------------


class PreuploadFile(BaseModel):
    path: str
    sample: str = ""
    size: int = Field(ge=0)


class PreuploadBody(BaseModel):
    files: list[PreuploadFile] = Field(max_length=PREUPLOAD_MAX_FILES)
    gitIgnore: str | None = None


@dataclass(frozen=True)
class UploadRules:
    """What a revision's `.gitattributes` sends to LFS and its `.gitignore` drops."""

    lfs: GitIgnoreSpec
    ignore: GitIgnoreSpec

    def mode(self, path: str, size: int, sample: bytes) -> str:
        if size == 0:
            return "regular"  # the client forces empty files to regular anyway
        binary = b"\0" in sample
        if size >= LFS_MIN_SIZE or binary or self.lfs.match_file(path):
            return "lfs"
        return "regular"


def lfs_patterns(gitattributes: str) -> list[str]:
    """The patterns that `.gitattributes` marks `filter=lfs`."""
    patterns = []
    for line in gitattributes.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, *attributes = line.split()
        if "filter=lfs" in attributes:
            patterns.append(pattern)
    return patterns


def _text_at(blobs: BlobStore, files: dict[str, Listed], path: str) -> str:
    entry = files.get(path)
    if entry is None or entry.is_dir or entry.lfs_oid is not None:
        return ""
    return bytes(load_object(blobs, entry.oid).as_raw_string()).decode("utf-8", "replace")


def upload_rules(blobs: BlobStore, files: dict[str, Listed], git_ignore: str | None) -> UploadRules:
    attributes = _text_at(blobs, files, ".gitattributes")
    ignore = git_ignore if git_ignore is not None else _text_at(blobs, files, ".gitignore")
    return UploadRules(
        lfs=GitIgnoreSpec.from_lines(lfs_patterns(attributes)),
        ignore=GitIgnoreSpec.from_lines(ignore.splitlines()),
    )


def _sample(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("preupload: 'sample' must be base64") from None


@api_route(router, "/{namespace}/{name}/preupload/{rest:path}", ("POST",))
def preupload(
    request: Request,
    body: PreuploadBody,
    session: SessionDep,
    principal: PrincipalDep,
    blobs: BlobsDep,
) -> Response:
    """Every requested path is echoed (the client indexes the answer by path). `oid` is the
    current file's: sha256 for LFS, git sha1 otherwise, so unchanged files are skipped."""
    target = api_target(request, 5)
    repo = get_repo(session, principal, target.repo_type, target.repo_id, upload=True)
    tree = get_commit(session, resolve_revision(session, repo, target.revision)).tree_sha
    wanted = [f.path for f in body.files] + [".gitattributes", ".gitignore"]
    current = lookup_paths(session, tree, wanted)
    rules = upload_rules(blobs, current, body.gitIgnore)
    answer = []
    for item in body.files:
        entry = current.get(item.path)
        answer.append(
            {
                "path": item.path,
                "uploadMode": rules.mode(item.path, item.size, _sample(item.sample)),
                "shouldIgnore": bool(rules.ignore.match_file(item.path)),
                "oid": None if entry is None or entry.is_dir else entry.lfs_oid or entry.oid,
            }
        )
    large = [f.size for f, a in zip(body.files, answer, strict=True) if _sent_large(a)]
    settings = request.app.state.settings
    # Refused here, huggingface_hub shows the message; a Xet upload refused later shows the
    # client only "413" (hf_xet reports the status, not the body).
    check_upload(session, settings, repo.namespace, Upload(unhashed=large))
    return JSONResponse({"files": answer})


def _sent_large(answer: dict[str, Any]) -> bool:
    return answer["uploadMode"] == "lfs" and not answer["shouldIgnore"]


# --- commit (§11) -----------------------------------------------------------------------


@dataclass
class CommitRequest:
    summary: str = ""
    description: str = ""
    parent_commit: str | None = None
    operations: list[Operation] = field(default_factory=list)


async def ndjson_lines(
    stream: AsyncIterator[bytes], limit: int, first_line_limit: int | None = None
) -> AsyncIterator[bytes]:
    """The body's lines, in time linear in its size, refusing bodies over limit while they
    stream (Content-Length may be absent, so the middleware's check alone is not enough) and
    a first line past first_line_limit (the header is small; a body without a newline must
    not be buffered whole first)."""
    parts: list[bytes] = []  # the pieces of the line being read
    pending = total = lines = 0
    async for chunk in stream:
        total += len(chunk)
        if total > limit:
            raise PayloadTooLarge(f"Commit body too large: the limit is {limit} bytes")
        start = 0
        while (end := chunk.find(b"\n", start)) != -1:
            parts.append(chunk[start:end])
            line, parts, pending = b"".join(parts), [], 0
            lines += 1
            if line.strip():
                yield line
            start = end + 1
        if start < len(chunk):
            parts.append(chunk[start:])
            pending += len(chunk) - start
        if lines == 0 and first_line_limit is not None and pending > first_line_limit:
            raise PayloadTooLarge(
                f"commit: the header line is longer than {first_line_limit} bytes"
            )
    line = b"".join(parts)
    if line.strip():
        yield line


def _value(line: bytes, number: int) -> tuple[str, dict[str, Any]]:
    try:
        item = json.loads(line)
    except ValueError:
        raise BadRequest(f"commit: line {number} is not valid JSON") from None
    if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
        raise BadRequest(f'commit: line {number} must be {{"key": ..., "value": {{...}}}}')
    return str(item.get("key")), item["value"]


def _string(value: dict[str, Any], key: str, where: str) -> str:
    found = value.get(key)
    if not isinstance(found, str):
        raise BadRequest(f"commit: {where} needs a string {key!r}")
    return found


def _file_op(value: dict[str, Any]) -> AddFile:
    path = _string(value, "path", "file")
    content = _string(value, "content", "file")
    encoding = value.get("encoding", "base64")
    if encoding == "utf-8":
        return AddFile(path, content.encode())
    if encoding != "base64":
        raise BadRequest(f"commit: unknown encoding {encoding!r} for {path!r}")
    try:
        return AddFile(path, base64.b64decode(content, validate=True))
    except (binascii.Error, ValueError):
        raise BadRequest(f"commit: the content of {path!r} is not valid base64") from None


def _lfs_op(value: dict[str, Any]) -> AddLfsFile:
    path = _string(value, "path", "lfsFile")
    oid = _string(value, "oid", "lfsFile").lower()
    if value.get("algo", "sha256") != "sha256" or not OID_RE.match(oid):
        raise BadRequest(f"commit: {path!r} needs a sha256 oid (64 hex digits)")
    size = value.get("size")
    if size is not None and (not isinstance(size, int) or size < 0):
        raise BadRequest(f"commit: the size of {path!r} must be a non-negative integer")
    return AddLfsFile(path, oid, size)


def _header(request: CommitRequest, value: dict[str, Any]) -> None:
    request.summary = str(value.get("summary") or "")
    request.description = str(value.get("description") or "")
    parent = value.get("parentCommit")
    if parent is not None:
        if not isinstance(parent, str) or not PARENT_RE.match(parent.lower()):
            raise BadRequest("commit: parentCommit must be a commit sha (5 to 40 hex digits)")
        request.parent_commit = parent.lower()


async def commit_body(
    request: Request, principal: PrincipalDep, session: SessionDep
) -> CommitRequest:
    """Parse the NDJSON body: a header line first, then one line per operation. The caller's
    right to write the repo is checked before a byte of it is read, and no database
    connection is held while the body streams in (a slow upload must not pin one)."""
    target = api_target(request, 5)
    await run_in_threadpool(
        partial(check_repo, upload=True), session, principal, target.repo_type, target.repo_id
    )
    limit = min(MAX_COMMIT_BODY, request.app.state.settings.max_request_body)
    parsed = CommitRequest()
    number = 0
    async for line in ndjson_lines(request.stream(), limit, MAX_HEADER_LINE):
        number += 1
        key, value = _value(line, number)
        if number == 1 and key != "header":
            raise BadRequest("commit: the first line must be the header")
        if key == "header":
            _header(parsed, value)
        elif key == "file":
            parsed.operations.append(_file_op(value))
        elif key == "lfsFile":
            parsed.operations.append(_lfs_op(value))
        elif key in ("deletedFile", "deletedFolder"):
            path = _string(value, "path", key)
            parsed.operations.append(DeletePath(path, folder=key == "deletedFolder"))
        else:
            raise BadRequest(f"commit: unknown operation {key!r} on line {number}")
    if number == 0:
        raise BadRequest("commit: the body is empty; send a header line")
    return parsed


CommitBody = Annotated[CommitRequest, Depends(commit_body)]


@api_route(router, "/{namespace}/{name}/commit/{rest:path}", ("POST",))
def commit(
    request: Request,
    body: CommitBody,
    session: SessionDep,
    principal: PrincipalDep,
    factory: FactoryDep,
    blobs: BlobsDep,
    create_pr: bool = False,
) -> Response:
    target = api_target(request, 5)
    repo = get_repo(session, principal, target.repo_type, target.repo_id, content=True)
    revision = target.revision or "main"
    if target.path and not create_pr:
        revision = f"{revision}/{target.path}"  # an unencoded branch name with a slash
    session.close()  # the service opens its own sessions; hold no connection meanwhile
    change = Change(body.operations, body.summary, body.description, body.parent_commit)
    done = contribute(
        factory,
        blobs,
        request.app.state.settings,
        principal,
        repo.id,
        revision,
        change,
        create_pr=create_pr,
        actor=Actor.of(request, principal, "api"),
    )
    base = repo_url(request, repo.type, repo.repo_id)
    number = done.pull_request
    pr_url = None if number is None else f"{base}/discussions/{number}"
    url = f"{base}/commit/{done.sha}"
    return JSONResponse({"commitUrl": url, "commitOid": done.sha, "pullRequestUrl": pr_url})


# --- cross-repo copies of large files (§7.2) ----------------------------------------------


class DuplicateTarget(BaseModel):
    type: str | None = None
    name: str


class DuplicateFile(BaseModel):
    sha256: str
    xetHash: str | None = None
    filename: str | None = None


class DuplicateBody(BaseModel):
    target: DuplicateTarget
    files: list[DuplicateFile] = Field(max_length=PREUPLOAD_MAX_FILES)


@api_route(router, "/{namespace}/{name}/lfs-files/duplicate", ("POST",))
def duplicate_lfs_files(
    request: Request, body: DuplicateBody, principal: PrincipalDep, factory: FactoryDep
) -> Response:
    """Give the target repo the source repo's objects, so that a commit there may name them
    (`CommitOperationCopy` from another repo). Reading the source is the proof of access."""
    source_path = api_target(request, 5)
    oids = list(dict.fromkeys(f.sha256 for f in body.files))
    with write_transaction(factory) as session:
        source = get_repo(
            session, principal, source_path.repo_type, source_path.repo_id, content=True
        )
        target = get_repo(session, principal, body.target.type or "model", body.target.name)
        require_write(session, principal, target.namespace, (target.type, target.repo_id))
        found = linked_sizes(session, source.id, oids)
        check_upload(session, request.app.state.settings, target.namespace, Upload(lfs=found))
        rows = [{"repo_id": target.id, "oid": oid} for oid in found]
        insert_ignore(session, RepoLfsObject, rows, ["repo_id", "oid"])
    failed = [
        {"sha256": oid, "error": f"{oid} is not a large file of {source.repo_id}"}
        for oid in oids
        if oid not in found
    ]
    return JSONResponse({"failed": failed})
