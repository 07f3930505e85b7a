"""Page URLs of repos, built in one place so every link encodes revisions and paths alike.

A revision is one path segment with its `/` encoded (`refs%2Fpr%2F1`), as the API reads it
(hf-protocol.md §4); a file path keeps its `/` separators.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from app.collections.models import Collection
from app.collections.service import slug_of
from app.repos.models import Repo


def repo_url(repo: Repo) -> str:
    return repo.page_path


def collection_url(collection: Collection) -> str:
    return f"/collections/{quote(slug_of(collection))}"


def _rev(revision: str) -> str:
    return quote(revision, safe="")


def tree_url(repo: Repo, revision: str = "main", path: str = "") -> str:
    out = f"{repo_url(repo)}/tree/{_rev(revision)}"
    return out + (f"/{quote(path)}" if path else "")


def blob_url(repo: Repo, revision: str, path: str) -> str:
    return f"{repo_url(repo)}/blob/{_rev(revision)}/{quote(path)}"


def resolve_url(repo: Repo, revision: str, path: str) -> str:
    return f"{repo_url(repo)}/resolve/{_rev(revision)}/{quote(path)}"


def edit_url(repo: Repo, action: str, revision: str, path: str = "") -> str:
    """The browser editor's pages: action is new, edit or delete (app.web.editor)."""
    out = f"{repo_url(repo)}/{action}/{_rev(revision)}"
    return out + (f"/{quote(path)}" if path else "")


def blame_url(repo: Repo, revision: str, path: str) -> str:
    return f"{repo_url(repo)}/blame/{_rev(revision)}/{quote(path)}"


def commits_url(repo: Repo, revision: str = "main", path: str = "") -> str:
    out = f"{repo_url(repo)}/commits/{_rev(revision)}"
    return out + (f"/{quote(path)}" if path else "")


def commit_url(repo: Repo, sha: str) -> str:
    return f"{repo_url(repo)}/commit/{sha}"


def settings_url(repo: Repo) -> str:
    return f"{repo_url(repo)}/settings"


def list_url(repo_type: str, **params: str | None) -> str:
    """`/models?…` with the empty parameters left out."""
    query = urlencode({k: v for k, v in params.items() if v})
    return f"/{repo_type}s" + (f"?{query}" if query else "")


def safe_next(target: str | None) -> str:
    """A same-site path to go back to after sign-in; anything else goes home (no open
    redirect through `//evil.example` or `/\\evil.example`)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target
