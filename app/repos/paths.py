"""Validation of repo names, revisions and file paths (the Hub's rules, stricter where safe)."""

from __future__ import annotations

import re
import unicodedata

from app.errors import BadRequest, InvalidName, InvalidPath

REPO_TYPES = ("model", "dataset", "space")
PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}  # /api/{plural}/…
REPO_NAME_RE = re.compile(r"^(?!.*(--|\.\.))[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
MAX_PATH_BYTES = 1024
MAX_COMPONENT_BYTES = 255
# Bidi overrides and zero-width characters make one name look like another.
_DECEPTIVE = {"Cc", "Cf", "Cs", "Co", "Cn"}
BRANCH_RE = re.compile(r"^(?!/|.*(?:\.\.|//|@\{|\.lock(?:/|$)|/$|\.$))[A-Za-z0-9._/-]{1,200}$")


def validate_repo_name(name: str) -> str:
    if not REPO_NAME_RE.match(name) or name.endswith(".git"):
        raise InvalidName(
            f"invalid repo name {name!r}: use 1-96 letters, digits, '-', '_' or '.', starting "
            "and ending with a letter or digit, without '--' or '..'"
        )
    return name


def validate_repo_type(repo_type: str | None) -> str:
    repo_type = repo_type or "model"
    if repo_type not in REPO_TYPES:
        raise BadRequest(f"invalid repo type {repo_type!r}; use one of {', '.join(REPO_TYPES)}")
    return repo_type


def validate_path(path: str) -> str:
    """A file path inside a repo: relative, '/'-separated, no '.', '..' or '.git' parts;
    else InvalidPath (422, as the Hub answers a commit with such a path)."""
    if not path:
        raise InvalidPath("empty file path")
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        raise InvalidPath(f"file path longer than {MAX_PATH_BYTES} bytes: {path[:80]!r}…")
    if path.startswith("/") or "\\" in path:
        raise InvalidPath(f"invalid file path {path!r}: must be relative and use '/' separators")
    for char in path:
        if unicodedata.category(char) in _DECEPTIVE:
            raise InvalidPath(f"invalid file path {path!r}: contains a control character")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise InvalidPath(f"invalid file path {path!r}: empty, '.' or '..' component")
        if part.lower() == ".git":
            raise InvalidPath(f"invalid file path {path!r}: '.git' components are not allowed")
        if len(part.encode()) > MAX_COMPONENT_BYTES:
            raise InvalidPath(f"invalid file path {path!r}: a component is over 255 bytes")
    return path


def validate_branch(name: str) -> str:
    if not BRANCH_RE.match(name) or name.startswith("refs/"):
        raise BadRequest(f"invalid branch or tag name {name!r}")
    return name
