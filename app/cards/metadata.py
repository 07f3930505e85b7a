"""README.md YAML front matter -> card data, tags, pipeline tag and library, as the Hub derives."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

# Blank lines may come first, as huggingface_hub's RepoCard reads it.
FRONT_MATTER_RE = re.compile(
    r"\A\ufeff?\s*---[ \t]*\r?\n(.*?\r?\n)?---[ \t]*(?:\r?\n|\Z)", re.DOTALL
)
MAX_CARD_BYTES = 1024 * 1024  # the card is parsed at commit time; bigger cards keep no metadata
# Bounds of the YAML front matter (real cards hold a few KiB; model-index results some 100):
MAX_YAML_BYTES = 256 * 1024  # of text
MAX_YAML_NODES = 50_000  # values, counting each alias's expansion again
MAX_YAML_DEPTH = 64  # levels of nesting (PyYAML composes recursively)
MAX_EXPANDED_BYTES = 1024 * 1024  # scalar text, aliases expanded: what is stored as card data


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
    """The card's metadata, within bounds (`_load`); CardError says what is wrong or too large."""
    yaml_text, _ = split_front_matter(text)
    if yaml_text is None:
        return {}
    data = _load(yaml_text)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CardError("README.md metadata must be a YAML mapping")
    return _jsonable(data)


def _load(yaml_text: str) -> Any:
    """YAML parsed in bounded time and memory: the text's size is capped, then its node graph
    is composed (no values built yet) and walked with every alias expanded, so that a
    "billion laughs" card, an alias that contains itself or brackets nested thousands deep is
    refused before anything is constructed."""
    if len(yaml_text.encode()) > MAX_YAML_BYTES:
        raise CardError(
            f"README.md metadata is larger than {MAX_YAML_BYTES // 1024} KiB; "
            "move long content into the card's Markdown body"
        )
    loader = yaml.SafeLoader(yaml_text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        _check_bounds(root)
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise CardError(f"Invalid YAML in README.md metadata: {exc}") from None
    except RecursionError:
        raise CardError(
            f"README.md metadata is nested too deeply (at most {MAX_YAML_DEPTH} levels)"
        ) from None
    finally:
        loader.dispose()


def _check_bounds(root: yaml.Node) -> None:
    nodes, scalar_bytes = 0, 0
    stack: list[tuple[yaml.Node, int, frozenset[int]]] = [(root, 1, frozenset())]
    while stack:
        node, depth, ancestors = stack.pop()
        nodes += 1
        if nodes > MAX_YAML_NODES:
            raise CardError(
                f"README.md metadata has more than {MAX_YAML_NODES} values once its aliases "
                "are expanded"
            )
        if depth > MAX_YAML_DEPTH:
            raise CardError(
                f"README.md metadata is nested too deeply (at most {MAX_YAML_DEPTH} levels)"
            )
        if isinstance(node, yaml.ScalarNode):
            scalar_bytes += len(node.value)
            if scalar_bytes > MAX_EXPANDED_BYTES:
                raise CardError(
                    f"README.md metadata expands to more than {MAX_EXPANDED_BYTES // 1024} KiB "
                    "of text once its aliases are expanded"
                )
            continue
        if id(node) in ancestors:
            raise CardError("README.md metadata has a YAML alias that contains itself")
        inner = ancestors | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            children = [item for pair in node.value for item in pair]
        stack.extend((child, depth + 1, inner) for child in children)


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
