"""Which model a request means: repo + revision -> a `ModelSpec` (commit, task, files, memory).

Runs in the API process, which owns the database; workers only get the spec and read the named
blobs themselves. Specs are cached per (repo, commit): a commit never changes, and a new commit
on the branch resolves to a new spec, so it is picked up on the next load.
"""

from __future__ import annotations

import json
import struct
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from app.auth.permissions import Principal
from app.blobs import BlobStore
from app.cards.derived import task_of
from app.inference.errors import UnsafeModel, UnsupportedModel
from app.inference.protocol import FileRef, LoadSpec
from app.repos import content
from app.repos.models import Repo
from app.repos.service import FileEntry, get_commit, get_repo, list_entries, resolve_revision
from app.security.scanner import SAFE, is_pickle_path
from app.security.service import content_key, reason, verdicts

# Tasks a worker can run (app/inference/runners.py), as huggingface.co names them.
TASKS = (
    "text-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
    "summarization",
    "translation",
    "text-generation",
    "text2text-generation",
    "zero-shot-classification",
    "feature-extraction",
    "sentence-similarity",
    "image-classification",
    "zero-shot-image-classification",
)
IMAGE_TASKS = ("image-classification", "zero-shot-image-classification")
# Tasks that share one loaded model: asking for one on a repo tagged with another is fine.
COMPATIBLE = {
    "feature-extraction": {"sentence-similarity"},
    "sentence-similarity": {"feature-extraction"},
    "text2text-generation": {"summarization", "translation"},
    "summarization": {"text2text-generation", "translation"},
    "translation": {"text2text-generation", "summarization"},
    "text-classification": {"zero-shot-classification"},
    "zero-shot-classification": {"text-classification"},
}
# Files a worker needs: configs, tokenizers, safetensors weights and sentence-transformers modules.
NEEDED_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".jinja", ".tiktoken")
PICKLE_SUFFIXES = (".bin", ".pt", ".pth")
SAFETENSORS_HEADER_MAX = 100 * 1024 * 1024  # the format's own limit on the JSON header
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}  # fmt: skip
SPEC_CACHE_SIZE = 512


@dataclass(frozen=True)
class ModelSpec:
    """A servable model: the load instructions plus what the router needs to know."""

    repo_id: str
    sha: str
    task: str
    load: LoadSpec
    public: bool = False  # as of this resolution (specs are cached per commit)

    @property
    def key(self) -> str:
        return self.load.key


class SpecCache:
    """(repo db id, commit sha) -> ModelSpec, least recently used dropped first."""

    def __init__(self, size: int = SPEC_CACHE_SIZE):
        self.size = size
        self._items: OrderedDict[tuple[int, str], ModelSpec] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[int, str]) -> ModelSpec | None:
        with self._lock:
            spec = self._items.get(key)
            if spec is not None:
                self._items.move_to_end(key)
            return spec

    def put(self, key: tuple[int, str], spec: ModelSpec) -> None:
        with self._lock:
            self._items[key] = spec
            while len(self._items) > self.size:
                self._items.popitem(last=False)


@dataclass(frozen=True)
class Resolver:
    """Resolves repo ids to specs for one app: its store, cache and load policy."""

    blobs: BlobStore
    cache: SpecCache
    dtype_bytes: int | None  # bytes per float parameter once loaded; None keeps the stored dtype
    pickle_repos: frozenset[str]

    def resolve(
        self,
        session: Session,
        principal: Principal,
        repo_id: str,
        revision: str | None,
        task: str | None = None,
    ) -> ModelSpec:
        """The spec for a task on a repo at a revision; RepoNotFound for hidden repos,
        RevisionNotFound, or UnsupportedModel naming why it can't be served."""
        repo = get_repo(session, principal, "model", repo_id, content=True)
        sha = resolve_revision(session, repo, revision)
        spec = self.cache.get((repo.id, sha))
        if spec is None:
            spec = self._build(session, principal, repo, sha)
            self.cache.put((repo.id, sha), spec)
        return replace(with_task(spec, task), public=not repo.private)

    def _build(self, session: Session, principal: Principal, repo: Repo, sha: str) -> ModelSpec:
        repo_id = f"{repo.namespace}/{repo.name}"
        entries = self._entries(session, sha)
        files = self._needed(session, repo_id, entries)
        _refuse_unsafe_pickles(session, [entries[f.path] for f in files])
        adapter = entries.get("adapter_config.json")
        base: ModelSpec | None = None
        if adapter is not None:
            base = self._adapter_base(session, principal, repo_id, self._json(adapter))
        config = self._json(entries["config.json"]) if "config.json" in entries else {}
        task = detect_task(repo.pipeline_tag, config, base.task if base else None)
        weights = [f for f in files if f.path.endswith(".safetensors")]
        if not weights and not any(f.path.endswith(PICKLE_SUFFIXES) for f in files):
            raise UnsupportedModel(
                f"{repo_id} has no safetensors weights at {sha[:12]}; upload model.safetensors"
            )
        memory = sum(self._tensor_bytes(f) for f in weights) or sum(f.size for f in files)
        load = LoadSpec(
            key=f"{repo_id}@{sha}",
            repo_id=repo_id,
            task=task,
            files=tuple(files),
            memory=memory + (base.load.memory if base else 0),
            base=base.load if base else None,
        )
        return ModelSpec(repo_id=repo_id, sha=sha, task=task, load=load)

    def _entries(self, session: Session, sha: str) -> dict[str, FileEntry]:
        tree = get_commit(session, sha).tree_sha
        return {e.path: e for e in list_entries(session, tree, recursive=True) if not e.is_dir}

    def _needed(
        self, session: Session, repo_id: str, entries: dict[str, FileEntry]
    ) -> list[FileRef]:
        pickle_ok = repo_id in self.pickle_repos
        out = []
        for entry in entries.values():
            wanted = entry.path.endswith(NEEDED_SUFFIXES) or (
                pickle_ok and entry.path.endswith(PICKLE_SUFFIXES)
            )
            if wanted:
                out.append(FileRef(entry.path, content.locate(self.blobs, entry, session)))
        return out

    def _json(self, entry: FileEntry) -> dict[str, Any]:
        try:
            value = json.loads(content.read_content(self.blobs, content.locate(self.blobs, entry)))
        except (ValueError, UnicodeDecodeError):
            raise UnsupportedModel(f"{entry.path} is not valid JSON") from None
        if not isinstance(value, dict):
            raise UnsupportedModel(f"{entry.path} is not a JSON object")
        return value

    def _adapter_base(
        self, session: Session, principal: Principal, repo_id: str, adapter: dict[str, Any]
    ) -> ModelSpec:
        """A LoRA/PEFT adapter is served on its base model, itself a repo on this hub (the
        caller must be able to read both)."""
        base_id = adapter.get("base_model_name_or_path")
        if not isinstance(base_id, str) or base_id.count("/") != 1:
            raise UnsupportedModel(
                f"{repo_id}: adapter_config.json names no base model repo (namespace/name)"
            )
        revision = adapter.get("revision") if isinstance(adapter.get("revision"), str) else None
        try:
            return self.resolve(session, principal, base_id, revision)
        except UnsupportedModel as exc:
            raise UnsupportedModel(f"{repo_id}: base model {base_id}: {exc.message}") from None

    def _tensor_bytes(self, ref: FileRef) -> int:
        """Bytes the tensors of one safetensors file take once loaded, from its header alone."""

        def read(start: int, length: int) -> bytes:
            return b"".join(content.open_content(self.blobs, ref.content, start, length))

        header = _header(read(0, 8), lambda n: read(8, n))
        total = 0
        for name, info in header.items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            shape = info.get("shape", [])
            if not isinstance(shape, list) or not all(
                isinstance(dim, int) and not isinstance(dim, bool) and dim >= 0 for dim in shape
            ):
                raise UnsupportedModel(
                    f"{ref.path}: tensor {name!r} has a shape that is not a list of sizes"
                )
            count = 1
            for dim in shape:
                count *= dim
            stored = DTYPE_BYTES.get(str(info.get("dtype")), 4)
            is_float = str(info.get("dtype", "")).startswith(("F", "BF"))
            total += count * (self.dtype_bytes if is_float and self.dtype_bytes else stored)
        return total


def _header(first: bytes, read: Any) -> dict[str, Any]:
    if len(first) < 8:
        raise UnsupportedModel("a safetensors file is shorter than its header")
    (length,) = struct.unpack("<Q", first)
    if length > SAFETENSORS_HEADER_MAX:
        raise UnsupportedModel("a safetensors header is larger than the format allows")
    try:
        header = json.loads(read(length))
    except ValueError:
        raise UnsupportedModel("a safetensors file has an unreadable header") from None
    return header if isinstance(header, dict) else {}


def _refuse_unsafe_pickles(session: Session, files: list[FileEntry]) -> None:
    """UnsafeModel unless every pickle file the worker would load was scanned safe at commit
    time (`app.security`); a file without a verdict is refused too, never scanned here."""
    pickles = [f for f in files if is_pickle_path(f.path)]
    found = verdicts(session, (content_key(f.lfs_oid, f.oid) for f in pickles))
    for entry in pickles:
        scan = found.get(content_key(entry.lfs_oid, entry.oid))
        if scan is None:
            raise UnsafeModel(f"{entry.path} has not been scanned for unsafe pickle imports")
        if scan.status != SAFE:
            raise UnsafeModel(f"unsafe pickle in {entry.path}: {reason(scan)}")


def detect_task(pipeline_tag: str | None, config: dict[str, Any], base_task: str | None) -> str:
    """The card's pipeline_tag, else the base model's task (adapters), else the config's
    architecture; UnsupportedModel saying why when none is servable."""
    if pipeline_tag:
        if pipeline_tag not in TASKS:
            raise UnsupportedModel(
                f"task {pipeline_tag!r} (the card's pipeline_tag) cannot be served; "
                f"supported: {', '.join(TASKS)}"
            )
        return pipeline_tag
    if base_task:
        return base_task
    task = task_of(config.get("architectures"))
    if task is not None:
        return task
    raise UnsupportedModel(
        "the task of this model is unknown: set pipeline_tag in its README.md metadata or "
        "architectures in config.json"
    )


def with_task(spec: ModelSpec, task: str | None) -> ModelSpec:
    """The spec for an explicitly requested task (`/pipeline/{task}`), if the model can run it."""
    if task is None or task == spec.task:
        return spec
    if task not in TASKS:
        raise UnsupportedModel(f"unknown task {task!r}; supported: {', '.join(TASKS)}")
    if task not in COMPATIBLE.get(spec.task, set()):
        raise UnsupportedModel(f"{spec.repo_id} is a {spec.task} model; it cannot run {task}")
    return replace(spec, task=task)
