"""Route on the raw request path: revisions and tree paths arrive with `/` encoded as `%2F`
(hf-protocol.md §4), and uvicorn decodes `scope["path"]` before routing, so
`tree/refs%2Fpr%2F1/sub%2Fdir` and `tree/refs/pr/1/sub/dir` look alike there."""

from __future__ import annotations

import re
from urllib.parse import unquote

from fastapi import Request

# huggingface_hub itself treats these as one revision even when not encoded (hf_api.py:278-285).
SPECIAL_REF = re.compile(r"^(refs/pr/\d+|refs/convert/[\w-]+)(?:/|$)")


def raw_segments(request: Request) -> list[str]:
    """The request path split on literal `/`, each segment percent-decoded afterwards."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    path = raw.decode("latin-1").split("?", 1)[0]
    return [unquote(part) for part in path.strip("/").split("/")]


def split_revision_and_path(segments: list[str]) -> tuple[str, str]:
    """`[rev, *path]` -> (rev, path), keeping an unencoded `refs/pr/N` together."""
    if not segments:
        return "main", ""
    joined = "/".join(segments)
    match = SPECIAL_REF.match(joined)
    if match:
        revision = match.group(1)
        return revision, joined[len(revision) :].lstrip("/")
    return segments[0], "/".join(segments[1:])
