"""README.md YAML front matter -> card data, tags, pipeline tag and library, as the Hub derives."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

FRONT_MATTER_RE = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?\r?\n)?---[ \t]*(?:\r?\n|\Z)", re.DOTALL)
MAX_CARD_BYTES = 1024 * 1024  # the card is parsed at commit time; bigger cards keep no metadata


class CardError(ValueError):
    """The YAML front matter does not parse or is not a mapping."""


@dataclass
class CardMetadata:
    data: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    pipeline_tag: str | None = None
    library_name: str | None = None


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(YAML text or None, the Markdown body after it)."""
    match = FRONT_MATTER_RE.match(text)
    if match is None:
        return None, text
    return match.group(1) or "", text[match.end() :]


def parse_yaml(text: str) -> dict[str, Any]:
    yaml_text, _ = split_front_matter(text)
    if yaml_text is None:
        return {}
    try:
        data = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        raise CardError(f"Invalid YAML in README.md metadata: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CardError("README.md metadata must be a YAML mapping")
    return _jsonable(data)


def _jsonable(value: Any) -> Any:
    """YAML may hold dates and other types that JSON columns cannot store."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def card_metadata(text: str, repo_type: str) -> CardMetadata:
    """Metadata of a README; a card whose YAML does not parse gives empty metadata."""
    try:
        data = parse_yaml(text)
    except CardError:
        return CardMetadata()
    tags = _as_list(data.get("tags"))
    library = data.get("library_name")
    pipeline = data.get("pipeline_tag")
    if isinstance(library, str) and library:
        tags.insert(0, library)
    if isinstance(pipeline, str) and pipeline:
        tags.append(pipeline)
    for key, prefix in (
        ("license", "license"),
        ("datasets", "dataset"),
        ("base_model", "base_model"),
    ):
        tags.extend(f"{prefix}:{v}" for v in _as_list(data.get(key)))
    for lang in _as_list(data.get("language")):
        tags.append(lang if repo_type == "model" else f"language:{lang}")
    if repo_type == "dataset":
        for key in ("task_categories", "size_categories", "task_ids", "modality"):
            tags.extend(f"{key}:{v}" for v in _as_list(data.get(key)))
    unique = list(dict.fromkeys(tags))
    return CardMetadata(
        data=data,
        tags=unique,
        pipeline_tag=pipeline if isinstance(pipeline, str) else None,
        library_name=library if isinstance(library, str) else None,
    )
