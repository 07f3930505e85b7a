"""The answer for an `/api/…` path no route serves, included after every API router and
before the pages (whose `/{namespace}/{name}` routes would otherwise take it as a repo).

A path under `/api/models|datasets|spaces/` names a repo that no route fits — an id without a
namespace (`/api/models/gpt2`) or a missing one — so it is `RepoNotFound`, which
huggingface_hub's `repo_exists`/`file_exists` read as "no". Anything else is a 404 of its own,
"no such API route", whatever the method. A download from an id without a namespace
(`/gpt2/resolve/main/config.json`) is `RepoNotFound` too, so `file_exists` says "no".
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from app.errors import NotFound, RepoNotFound
from app.repos.paths import PLURALS

router = APIRouter(include_in_schema=False)
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


@router.api_route("/api/{rest:path}", methods=METHODS)
def unknown_api_route(request: Request, rest: str) -> None:
    first, _, repo = rest.partition("/")
    if first in PLURALS and repo:
        raise RepoNotFound("Repository not found")
    raise NotFound(f"No API route {request.method} /api/{rest}")


def _no_namespace(request: Request, name: str, rest: str) -> None:
    raise RepoNotFound("Repository not found")


for _prefix in ("", "/datasets", "/spaces"):
    for _word in ("resolve", "raw"):
        router.add_api_route(
            f"{_prefix}/{{name}}/{_word}/{{rest:path}}", _no_namespace, methods=["GET", "HEAD"]
        )
