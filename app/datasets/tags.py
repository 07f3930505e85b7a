"""Tags the Hub derives from a dataset's files (`format:*`, `modality:*`), refreshed on every
commit to the default branch by the repo's after-commit hook (app/repos/manage.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.datasets.layout import resolve_layout
from app.errors import BadRequest
from app.repos.service import list_entries

DERIVED_PREFIXES = ("format:", "modality:")
MODALITY = {
    "parquet": "tabular",
    "csv": "tabular",
    "json": "text",
    "text": "text",
    "imagefolder": "image",
    "audiofolder": "audio",
}


def derived_tags(session: Session, tree_sha: str, card: Mapping[str, Any]) -> list[str]:
    """`format:<builder>` and `modality:<kind>` of the configs the files resolve to."""
    paths = [e.path for e in list_entries(session, tree_sha, recursive=True) if not e.is_dir]
    try:
        formats = resolve_layout(paths, card).formats
    except BadRequest:
        return []  # a malformed `configs:` block: the viewer reports it, tags stay quiet
    modalities = sorted({f"modality:{MODALITY[f]}" for f in formats if f in MODALITY})
    return [f"format:{f}" for f in formats] + modalities


def with_derived_tags(tags: list[str], derived: list[str]) -> list[str]:
    """The card's tags with the derived ones replaced by the current set."""
    kept = [t for t in tags if not t.startswith(DERIVED_PREFIXES)]
    return kept + [t for t in derived if t not in kept]
