"""JSON shapes of the read API, built as plain dicts (hf-protocol.md §5).

Plain dicts, not pydantic models: a model_info of a 10,000-file repo builds 10,000 siblings,
and FastAPI's encoder would cost more than the whole database read. Routes serialize these
with `json_response`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi.responses import Response

from app.http import iso_z
from app.repos.lastcommit import LastCommit
from app.repos.models import Commit, Ref, Repo

JsonDict = dict[str, Any]

# Keys of a repo object that `expand=` may ask for; others are ignored (the Hub has many more).
COMMON_KEYS = (
    "author",
    "sha",
    "lastModified",
    "createdAt",
    "private",
    "gated",
    "disabled",
    "downloads",
    "likes",
    "tags",
    "cardData",
    "siblings",
    "usedStorage",
)
EXTRA_KEYS = {
    "model": ("pipeline_tag", "library_name", "spaces", "transformersInfo", "safetensors"),
    "dataset": ("description", "citation", "paperswithcode_id"),
    "space": ("sdk",),
}
# What list_models/list_datasets answer without full/cardData/expand, as huggingface.co does.
LIST_KEYS = (
    "author",
    "private",
    "gated",
    "downloads",
    "likes",
    "tags",
    "createdAt",
    "lastModified",
    "pipeline_tag",
    "library_name",
)


class Entry(Protocol):
    """What a FileEntry and a listing tuple have in common."""

    @property
    def path(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def oid(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def lfs_oid(self) -> str | None: ...
    @property
    def lfs_pointer_size(self) -> int | None: ...
    @property
    def xet_hash(self) -> str | None: ...


def json_response(
    body: Any, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    data = body if isinstance(body, bytes) else dumps(body)
    return Response(data, status_code, headers=headers, media_type="application/json")


def last_commit_json(last: LastCommit) -> JsonDict:
    return {"id": last.sha, "title": last.title, "date": iso_z(last.date)}


def entry_json(
    entry: Entry, last: LastCommit | None = None, security: JsonDict | None = None
) -> JsonDict:
    """A tree / paths-info entry (§5.3): `lfs.oid` here, unlike siblings' `lfs.sha256`;
    `expand=true` adds lastCommit and, for a scanned pickle file, securityFileStatus."""
    if entry.kind == "tree":
        out: JsonDict = {"type": "directory", "oid": entry.oid, "size": 0, "path": entry.path}
    else:
        out = {"type": "file", "oid": entry.oid, "size": entry.size, "path": entry.path}
        if entry.lfs_oid is not None:
            out["lfs"] = {
                "oid": entry.lfs_oid,
                "size": entry.size,
                "pointerSize": entry.lfs_pointer_size,
            }
        if entry.xet_hash is not None:
            out["xetHash"] = entry.xet_hash
    if last is not None:
        out["lastCommit"] = last_commit_json(last)
    if security is not None:
        out["securityFileStatus"] = security
    return out


def sibling_json(entry: Entry, blobs: bool) -> JsonDict:
    """A repo object's sibling (§5.1): size/blobId/lfs only with `blobs=true`."""
    if not blobs:
        return {"rfilename": entry.path}
    out: JsonDict = {"rfilename": entry.path, "size": entry.size, "blobId": entry.oid}
    if entry.lfs_oid is not None:
        out["lfs"] = {
            "sha256": entry.lfs_oid,
            "size": entry.size,
            "pointerSize": entry.lfs_pointer_size,
        }
    return out


def commit_json(commit: Commit, formatted: bool = False) -> JsonDict:
    """A commits-list item (§5.5); every key is required by the client. `formatted` is the
    HTML the Hub renders for `expand[]=formatted`: here the text, escaped."""
    out: JsonDict = {
        "id": commit.sha,
        "title": commit.title,
        "message": commit.message,
        "date": iso_z(commit.authored_at),
        "authors": [{"user": commit.author_name}],
    }
    if formatted:
        out["formatted"] = {
            "title": html.escape(commit.title),
            "message": html.escape(commit.message),
        }
    return out


def refs_json(refs: Iterable[Ref], include_prs: bool) -> JsonDict:
    """§5.6: `converts` must be present even when empty."""
    groups: dict[str, list[JsonDict]] = {"branches": [], "converts": [], "tags": []}
    if include_prs:
        groups["pullRequests"] = []
    prefixes = {
        "refs/heads/": "branches",
        "refs/convert/": "converts",
        "refs/tags/": "tags",
        "refs/pr/": "pullRequests",
    }
    for ref in refs:
        for prefix, group in prefixes.items():
            if ref.name.startswith(prefix) and group in groups:
                name = ref.name if group == "pullRequests" else ref.name.removeprefix(prefix)
                groups[group].append(
                    {"name": name, "ref": ref.name, "targetCommit": ref.commit_sha}
                )
    return dict(groups)


@dataclass
class RepoView:
    """A repo at one revision; siblings is the rendered JSON array of its files, when the
    answer lists them (rendered once per tree, see `app.repos.listing.TreeCache`)."""

    repo: Repo
    sha: str | None
    siblings: bytes | None = None
    used_storage: int | None = None
    security: JsonDict | None = None  # `securityRepoStatus`, when `securityStatus=true` asks


def all_keys(repo_type: str) -> tuple[str, ...]:
    return COMMON_KEYS + EXTRA_KEYS[repo_type]


def dumps(body: Any) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def siblings_json(files: Iterable[Entry], blobs: bool) -> tuple[bytes, int]:
    """The rendered siblings array and the total size of the files."""
    files = list(files)
    return dumps([sibling_json(e, blobs) for e in files]), sum(e.size for e in files)


def render_repo(view: RepoView, keys: Iterable[str]) -> bytes:
    """The repo object (§5.1) limited to keys; `id` and `_id` are always there. The siblings
    array is spliced in already rendered: it is most of the bytes of a big repo's answer."""
    keys = list(keys)
    head = dumps(repo_json(view, keys))
    if "siblings" not in keys or view.siblings is None:
        return head
    return head[:-1] + b',"siblings":' + view.siblings + b"}"


def repo_json(view: RepoView, keys: Iterable[str]) -> JsonDict:
    repo = view.repo
    out: JsonDict = {"_id": f"{repo.id:024x}", "id": repo.repo_id}
    if repo.type == "model":
        out["modelId"] = repo.repo_id
    values = _repo_values(view)
    out.update((key, values[key]) for key in keys if key in values)
    return out


def _repo_values(view: RepoView) -> JsonDict:
    """Every key a repo object may have (but siblings, spliced in by render_repo); a key
    whose value is unknown is left out rather than sent as null."""
    repo = view.repo
    card = repo.card_data or {}
    values: JsonDict = {
        "author": repo.namespace,
        "lastModified": iso_z(repo.updated_at),
        "createdAt": iso_z(repo.created_at),
        "private": repo.private,
        "gated": repo.gated or False,
        "disabled": False,
        "downloads": repo.downloads,
        "likes": repo.likes,
        "tags": repo.tags or [],
        "pipeline_tag": repo.pipeline_tag,
        "library_name": repo.library_name,
        "spaces": [],
        "description": card.get("description") or card.get("pretty_name"),
        "citation": card.get("citation"),
        "paperswithcode_id": card.get("paperswithcode_id"),
        "sdk": card.get("sdk"),
    }
    for key, value in (repo.derived or {}).items():
        if key in ("transformersInfo", "safetensors"):  # the Hub's own fields (app.cards.derived)
            values[key] = value
    if view.sha is not None:
        values["sha"] = view.sha
    if repo.card_data:
        values["cardData"] = repo.card_data
    if view.used_storage is not None:
        # The storage of this revision's files (the Hub counts all history; we keep no total).
        values["usedStorage"] = max(repo.used_storage, view.used_storage)
    if view.security is not None:
        values["securityRepoStatus"] = view.security
    return values
