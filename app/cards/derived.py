"""What a model's files say about it, as the Hub derives it: the task and library from
`config.json` when the card names none, `transformersInfo`, and the parameter counts of its
safetensors weights (read from their headers by range, never whole).

`ModelFacts` follows the default branch (a consumer of the repo model's events), so
`model_info`, search filters and the inference widget see the inferred task right after the
commit that adds `config.json`.
"""

from __future__ import annotations

import json
import struct
from collections import Counter
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.blobs import BlobStore
from app.db.engine import write_transaction
from app.repos import content
from app.repos.models import Ref, Repo, RepoEvent
from app.repos.service import DEFAULT_BRANCH, HEADS, FileEntry, get_commit, list_entries

# Config architecture suffix -> task, when the card names no pipeline_tag (first match wins).
ARCHITECTURE_TASKS = (
    ("CLIPModel", "zero-shot-image-classification"),
    ("ForImageClassification", "image-classification"),
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("Model", "feature-extraction"),
)
AUTO_MODELS = {
    "zero-shot-image-classification": "AutoModelForZeroShotImageClassification",
    "image-classification": "AutoModelForImageClassification",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "fill-mask": "AutoModelForMaskedLM",
    "text-generation": "AutoModelForCausalLM",
    "text2text-generation": "AutoModelForSeq2SeqLM",
    "feature-extraction": "AutoModel",
}
IMAGE_PROCESSOR_TASKS = ("image-classification", "zero-shot-image-classification")
MAX_CONFIG_BYTES = 1024 * 1024  # a config.json is a few KiB
MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
MAX_WEIGHT_FILES = 200  # shards read per revision


def task_of(architectures: Any) -> str | None:
    """The task a list of `config.json` architectures implies, if any."""
    if not isinstance(architectures, list):
        return None
    for arch in architectures:
        for suffix, task in ARCHITECTURE_TASKS:
            if str(arch).endswith(suffix):
                return task
    return None


def transformers_info(task: str, files: set[str]) -> dict[str, str]:
    """`transformersInfo` (huggingface_hub's TransformersInfo): the auto class, the task and
    the processor a user loads it with."""
    processor = "AutoTokenizer"
    if task in IMAGE_PROCESSOR_TASKS:
        processor = "AutoProcessor" if "tokenizer_config.json" in files else "AutoImageProcessor"
    return {"auto_model": AUTO_MODELS.get(task, "AutoModel"), "pipeline_tag": task,
            "processor": processor}  # fmt: skip


def safetensors_header(
    blobs: BlobStore, located: content.Content, max_bytes: int = MAX_HEADER_BYTES
) -> dict[str, Any] | None:
    """The JSON header of a safetensors file, or None when it is not one (or its header is
    longer than max_bytes)."""
    first = b"".join(content.open_content(blobs, located, 0, 8))
    if len(first) < 8:
        return None
    (length,) = struct.unpack("<Q", first)
    if length > min(max_bytes, located.size - 8):
        return None
    try:
        header = json.loads(b"".join(content.open_content(blobs, located, 8, length)))
    except ValueError:
        return None
    return header if isinstance(header, dict) else None


def parameter_counts(headers: list[dict[str, Any]]) -> dict[str, int]:
    """dtype -> parameters, over every tensor of every header (shapes that are not lists of
    sizes are skipped: the weights are the uploader's, the answer must not fail on them)."""
    counts: Counter[str] = Counter()
    for header in headers:
        for name, info in header.items():
            if name == "__metadata__" or not isinstance(info, dict):
                continue
            shape = info.get("shape")
            if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
            ):
                continue
            size = 1
            for dim in shape:
                size *= dim
            counts[str(info.get("dtype"))] += size
    return dict(counts)


class ModelFacts:
    """The consumer of ref moves that keeps a model repo's derived facts current."""

    name = "model-facts"

    def __init__(self, factory: sessionmaker[Session], blobs: BlobStore):
        self.factory = factory
        self.blobs = blobs

    def handle(self, event: RepoEvent) -> None:
        if event.repo_type != "model" or event.ref != HEADS + DEFAULT_BRANCH or not event.new:
            return
        with self.factory() as session:
            repo = session.scalar(select(Repo).where(Repo.uid == event.repo_uid))
            head = session.scalar(
                select(Ref.commit_sha).where(Ref.repo_id == repo.id, Ref.name == event.ref)
            ) if repo is not None else None  # fmt: skip
            if repo is None or head != event.new:
                return  # gone, or moved again: that later event brings its own facts
            tree = get_commit(session, head).tree_sha
            entries = {e.path: e for e in list_entries(session, tree) if not e.is_dir}
        facts = self._facts(entries)
        with write_transaction(self.factory) as session:
            fresh = session.get(Repo, repo.id)
            if fresh is not None:
                _apply(fresh, facts)

    def _facts(self, entries: dict[str, FileEntry]) -> dict[str, Any]:
        config = self._config(entries.get("config.json"))
        weights = [e for path, e in sorted(entries.items()) if path.endswith(".safetensors")]
        headers = [
            header
            for entry in weights[:MAX_WEIGHT_FILES]
            if (header := safetensors_header(self.blobs, content.locate(self.blobs, entry)))
            is not None
        ]
        facts: dict[str, Any] = {"task": task_of(config.get("architectures")) if config else None}
        if facts["task"] is not None:
            facts["transformersInfo"] = transformers_info(facts["task"], set(entries))
        counts = parameter_counts(headers)
        if counts:
            facts["safetensors"] = {"parameters": counts, "total": sum(counts.values())}
        tokenizer = self._config(entries.get("tokenizer_config.json")) or {}
        if tokenizer.get("chat_template") or "chat_template.jinja" in entries:
            facts["chat"] = True  # the widget chats instead of completing text
        return facts

    def _config(self, entry: FileEntry | None) -> dict[str, Any] | None:
        if entry is None or entry.size > MAX_CONFIG_BYTES:
            return None
        try:
            value = json.loads(content.read_content(self.blobs, content.locate(self.blobs, entry)))
        except (ValueError, content.ContentMissing):
            return None
        return value if isinstance(value, dict) else None


def _apply(repo: Repo, facts: dict[str, Any]) -> None:
    """Store the facts; the card's own pipeline_tag and library_name always win."""
    card = repo.card_data or {}
    derived = {k: v for k, v in facts.items() if k in ("transformersInfo", "safetensors", "chat")}
    if card.get("pipeline_tag") and "transformersInfo" in derived:
        derived["transformersInfo"]["pipeline_tag"] = card["pipeline_tag"]
    repo.derived = derived or None
    task = facts.get("task")
    tags = list(repo.tags or [])
    if not card.get("pipeline_tag"):
        repo.pipeline_tag = task
        if task and task not in tags:
            tags.append(task)
    if not card.get("library_name") and task:
        repo.library_name = "transformers"
        if "transformers" not in tags:
            tags.insert(0, "transformers")
    repo.tags = tags
