"""Configs and splits of a dataset repo, resolved from its file list the way the Hub does.

Pure functions over paths (no I/O), following datasets 5.2 `data_files.py`:

1. the README's YAML `configs:` list, each with `data_files` (a glob, a list of globs, or a
   list of `{split, path}`) and an optional `data_dir`;
2. else the sharded pattern `data/{split}-00000-of-00001*.*`, then split keywords in folder
   names (`train/…`, `…-test/…`), then in file names (`train.csv`, `my_valid-1.jsonl`), then
   every file as `train`.

The format of a config is the most common supported extension among its files
(`infer_module_for_data_files`); files of other formats are left out, except the metadata
files of image and audio folders.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from app.errors import BadRequest

DEFAULT_CONFIG = "default"
TRAIN = "train"
SPLIT_KEYWORDS: dict[str, tuple[str, ...]] = {
    "train": ("train", "training"),
    "validation": ("validation", "valid", "dev", "val"),
    "test": ("test", "testing", "eval", "evaluation"),
}
SEP = "[-._ 0-9]"
SHARDED_RE = re.compile(r"^data/(?P<split>\w+)-[0-9]{5}-of-[0-9]{5}[^/]*\.[^/]+$")
DIR_PATTERNS = (
    "{kw}/**",
    "{kw}" + SEP + "*/**",
    "**/*" + SEP + "{kw}/**",
    "**/*" + SEP + "{kw}" + SEP + "*/**",
)
FILE_PATTERNS = ("**/{kw}" + SEP + "*", "**/*" + SEP + "{kw}" + SEP + "*")

FORMATS: dict[str, tuple[str, ...]] = {
    "parquet": (".parquet",),
    "csv": (".csv", ".tsv"),
    "json": (".jsonl", ".json", ".ndjson"),
    "text": (".txt",),
    "imagefolder": (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff"),
    "audiofolder": (".wav", ".mp3", ".flac", ".ogg", ".opus"),
}
FOLDER_FORMATS = ("imagefolder", "audiofolder")
METADATA_NAMES = ("metadata.csv", "metadata.jsonl", "metadata.parquet")


@dataclass(frozen=True)
class SplitFiles:
    name: str
    files: tuple[str, ...]
    metadata: tuple[str, ...] = ()  # metadata.csv/jsonl of image and audio folders


@dataclass(frozen=True)
class ConfigLayout:
    name: str
    format: str
    splits: tuple[SplitFiles, ...]

    def split(self, name: str) -> SplitFiles | None:
        return next((s for s in self.splits if s.name == name), None)


@dataclass(frozen=True)
class DatasetLayout:
    configs: tuple[ConfigLayout, ...] = field(default_factory=tuple)

    def config(self, name: str | None) -> ConfigLayout | None:
        if name is None:
            return self.configs[0] if self.configs else None
        return next((c for c in self.configs if c.name == name), None)

    @property
    def formats(self) -> list[str]:
        return sorted({c.format for c in self.configs})


@lru_cache(maxsize=256)
def glob_regex(pattern: str) -> re.Pattern[str]:
    """fsspec glob semantics: `*` and `?` stay within a folder, `**` crosses folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and "]" in pattern[i + 1 :]:
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1 : end].replace("\\", "\\\\") + "]")
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("^" + "".join(out) + "$")


def matching(paths: Iterable[str], pattern: str) -> list[str]:
    regex = glob_regex(pattern.lstrip("/"))
    return sorted(p for p in paths if regex.match(p))


def format_of(path: str) -> str | None:
    lower = path.lower()
    return next((f for f, exts in FORMATS.items() if lower.endswith(exts)), None)


def is_data_candidate(path: str) -> bool:
    """Hidden files and folders (`.git…`, `__pycache__`) are never data, as in datasets."""
    return not any(part.startswith((".", "__")) for part in path.split("/"))


def resolve_layout(paths: Sequence[str], card: Mapping[str, Any]) -> DatasetLayout:
    """Configs and splits of a revision from its file paths and README YAML."""
    candidates = [p for p in paths if is_data_candidate(p)]
    declared = card.get("configs")
    if declared:
        return DatasetLayout(tuple(_declared_config(candidates, c) for c in _config_list(declared)))
    splits = _inferred_splits(candidates)
    config = _make_config(DEFAULT_CONFIG, splits)
    return DatasetLayout((config,) if config.splits else ())


def _config_list(declared: Any) -> list[Mapping[str, Any]]:
    if not isinstance(declared, list) or not all(isinstance(c, Mapping) for c in declared):
        raise BadRequest("README.md: `configs` must be a list of mappings")
    # The config marked `default: true` comes first: it is the one shown without ?config=.
    return sorted(declared, key=lambda c: not c.get("default", False))


def _declared_config(paths: Sequence[str], config: Mapping[str, Any]) -> ConfigLayout:
    name = str(config.get("config_name") or DEFAULT_CONFIG)
    data_dir = str(config.get("data_dir") or "").strip("/")
    base = [p for p in paths if p.startswith(data_dir + "/")] if data_dir else list(paths)
    data_files = config.get("data_files")
    if data_files is None:
        relative = [p[len(data_dir) + 1 :] if data_dir else p for p in base]
        inferred = _inferred_splits(relative)
        prefix = data_dir + "/" if data_dir else ""
        splits = {s: [prefix + f for f in files] for s, files in inferred.items()}
        return _make_config(name, splits)
    prefix = data_dir + "/" if data_dir else ""
    splits = {
        split: sorted({f for pattern in patterns for f in matching(base, prefix + pattern)})
        for split, patterns in _split_patterns(name, data_files).items()
    }
    return _make_config(name, splits)


def _split_patterns(config: str, data_files: Any) -> dict[str, list[str]]:
    """`data_files` as {split: [glob, …]}: a string or list of strings is the train split."""
    if isinstance(data_files, str):
        return {TRAIN: [data_files]}
    if isinstance(data_files, Mapping):
        return {str(k): _as_list(config, v) for k, v in data_files.items()}
    if isinstance(data_files, list) and all(isinstance(x, str) for x in data_files):
        return {TRAIN: list(data_files)}
    if isinstance(data_files, list) and all(isinstance(x, Mapping) for x in data_files):
        out: dict[str, list[str]] = {}
        for item in data_files:
            out.setdefault(str(item.get("split") or TRAIN), []).extend(
                _as_list(config, item.get("path"))
            )
        return out
    raise BadRequest(f"README.md: config {config!r} has an invalid `data_files` field")


def _as_list(config: str, value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise BadRequest(f"README.md: config {config!r} has a `data_files` path that is not a glob")


def _inferred_splits(paths: Sequence[str]) -> dict[str, list[str]]:
    """datasets' default patterns, first match wins (data_files.py `get_data_patterns`)."""
    known = [p for p in paths if format_of(p) or p.rsplit("/", 1)[-1] in METADATA_NAMES]
    sharded: dict[str, list[str]] = {}
    for path in known:
        match = SHARDED_RE.match(path)
        if match:
            sharded.setdefault(match["split"], []).append(path)
    if sharded:
        order = list(SPLIT_KEYWORDS)
        ranked = sorted(sharded, key=lambda s: (order.index(s) if s in order else len(order), s))
        return {split: sharded[split] for split in ranked}
    for patterns in (DIR_PATTERNS, FILE_PATTERNS):
        found = {
            split: sorted(
                {f for kw in kws for p in patterns for f in matching(known, p.format(kw=kw))}
            )
            for split, kws in SPLIT_KEYWORDS.items()
        }
        found = {split: files for split, files in found.items() if files}
        if found:
            return found
    return {TRAIN: sorted(known)} if known else {}


def _make_config(name: str, splits: Mapping[str, list[str]]) -> ConfigLayout:
    """Pick the config's format and keep, per split, its files of that format."""
    counts = Counter(f for files in splits.values() for p in files if (f := format_of(p)))
    if not counts:
        return ConfigLayout(name, "unknown", ())
    # Folder formats win over their own metadata.csv/jsonl, which also count as csv/json.
    folder = next((f for f, _ in counts.most_common() if f in FOLDER_FORMATS), None)
    fmt = folder or counts.most_common(1)[0][0]
    out = []
    for split, files in splits.items():
        data = tuple(p for p in files if format_of(p) == fmt and not _is_metadata(p, folder))
        meta = tuple(p for p in files if folder and _is_metadata(p, folder))
        if data:
            out.append(SplitFiles(split, data, meta))
    return ConfigLayout(name, fmt, tuple(out))


def _is_metadata(path: str, folder: str | None) -> bool:
    return folder is not None and path.rsplit("/", 1)[-1] in METADATA_NAMES
