"""Browser pages (ARCHITECTURE.md §2 `web/`): included last by `create_app`, since the repo
pages' `/{namespace}/{name}` routes would otherwise shadow every two-segment path.

Order matters inside too: static files and fixed paths (`/login`, `/models`, …) come before
the repo pages, and those before the one-segment profile route.
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.errors import NotFound
from app.web import (
    account,
    admin,
    browse,
    collections,
    community,
    editor,
    gate,
    orgs,
    repo_pages,
    sso,
    webhooks,
)
from app.web.pages import STATIC_DIR, static_version

STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
STATIC_MAX_AGE_S = 365 * 24 * 3600  # URLs carry the content hash (pages.static_url)

router = APIRouter(include_in_schema=False)


@router.get("/static/{name}")
def static_file(name: str) -> Response:
    """The package's own files only: a fixed folder, no subfolders, known types."""
    path = STATIC_DIR / name
    media = STATIC_TYPES.get(path.suffix)
    if "/" in name or media is None or not path.is_file():
        raise NotFound(f"No static file {name}")
    headers = {
        "Cache-Control": f"public, max-age={STATIC_MAX_AGE_S}, immutable",
        "ETag": f'"{static_version(name)}"',
        "X-Content-Type-Options": "nosniff",
    }
    return Response(path.read_bytes(), media_type=media, headers=headers)


router.include_router(sso.router)
router.include_router(account.router)
router.include_router(webhooks.router)
router.include_router(collections.router)
router.include_router(admin.router)
router.include_router(orgs.router)
router.include_router(browse.router)
router.include_router(gate.router)
router.include_router(community.router)
router.include_router(editor.router)
router.include_router(repo_pages.router)
