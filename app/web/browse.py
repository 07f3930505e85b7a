"""Home, search with filters, and profiles: all read through the hub's repo search
(app/hub/search.py), so a page lists exactly what the API lists to the same caller."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Response
from sqlalchemy import select

from app.auth.accounts import may_manage, org_members
from app.auth.models import Organization, User
from app.auth.service import namespace_taken, user_orgs
from app.collections import service as collections
from app.db.engine import write_transaction
from app.errors import NotFound
from app.follows import service as follows
from app.repos.models import Repo
from app.repos.search import COUNT_CAP, RepoQuery, count_repos, search_repos
from app.web.pages import Page, PageDep, PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)

HOME_ROWS = 6  # repos per list on the home page
SEARCH_PAGE = 30
PROFILE_ROWS = 100
SORTS = {"lastModified": "Recently updated", "downloads": "Most downloads", "likes": "Most likes"}
# The Hub's fixed taxonomy, as its sidebar offers it; any other value still works by URL.
TASKS = (
    "text-generation",
    "text-classification",
    "token-classification",
    "question-answering",
    "fill-mask",
    "summarization",
    "translation",
    "text2text-generation",
    "zero-shot-classification",
    "feature-extraction",
    "sentence-similarity",
    "image-classification",
    "zero-shot-image-classification",
)
LIBRARIES = ("transformers", "sentence-transformers", "diffusers", "timm", "peft", "gguf")
LICENSES = ("apache-2.0", "mit", "bsd-3-clause", "cc-by-4.0", "cc-by-sa-4.0", "openrail", "other")


def _repos(
    page: Page, repo_type: str, sort: str, limit: int, author: str | None = None
) -> list[Repo]:
    query = RepoQuery(repo_type=repo_type, sort=sort, limit=limit, author=author)
    return search_repos(page.db, page.principal, query).repos


@router.get("/")
def home(page: PageDep) -> Response:
    lists = [
        ("Recently updated models", "model", "lastModified"),
        ("Most downloaded models", "model", "downloads"),
        ("Recently updated datasets", "dataset", "lastModified"),
        ("Most downloaded datasets", "dataset", "downloads"),
    ]
    sections = [
        (title, repo_type, sort, _repos(page, repo_type, sort, HOME_ROWS))
        for title, repo_type, sort in lists
    ]
    return page.render("home.html", sections=sections)


@router.get("/models")
def models(
    page: PageDep,
    search: str = "",
    pipeline_tag: str = "",
    library: str = "",
    license: str = "",
    tag: str = "",
    sort: str = "lastModified",
    cursor: str | None = None,
) -> Response:
    return _search(page, "model", search, pipeline_tag, library, license, tag, sort, cursor)


def _listing(repo_type: str) -> Any:
    """The listing page of datasets or Spaces: search, license, tag, sort (models have more)."""

    def listing(
        page: PageDep,
        search: str = "",
        license: str = "",
        tag: str = "",
        sort: str = "lastModified",
        cursor: str | None = None,
    ) -> Response:
        return _search(page, repo_type, search, "", "", license, tag, sort, cursor)

    return listing


router.add_api_route("/datasets", _listing("dataset"), methods=["GET"])
router.add_api_route("/spaces", _listing("space"), methods=["GET"])


def _search(
    page: Page,
    repo_type: str,
    search: str,
    pipeline_tag: str,
    library: str,
    license: str,
    tag: str,
    sort: str,
    cursor: str | None,
) -> Response:
    sort = sort if sort in SORTS else "lastModified"
    filters = [f for f in (library, f"license:{license}" if license else "", tag) if f]
    query = RepoQuery(
        repo_type=repo_type,
        search=search.split(),
        filters=filters,
        pipeline_tag=pipeline_tag or None,
        sort=sort,
        limit=SEARCH_PAGE,
        cursor=cursor,
    )
    found = search_repos(page.db, page.principal, query)
    total = count_repos(page.db, page.principal, query)
    params = {
        "search": search,
        "pipeline_tag": pipeline_tag,
        "library": library,
        "license": license,
        "tag": tag,
        "sort": sort,
    }
    return page.render(
        "search.html",
        repo_type=repo_type,
        repos=found.repos,
        total=total,
        total_capped=total > COUNT_CAP,
        next_cursor=found.next_cursor,
        params=params,
        sorts=SORTS,
        tasks=_with(TASKS, pipeline_tag),
        libraries=_with(LIBRARIES, library),
        licenses=_with(LICENSES, license),
    )


def _with(options: tuple[str, ...], chosen: str) -> tuple[str, ...]:
    """The offered values, plus the chosen one when it came by URL."""
    return options if not chosen or chosen in options else (*options, chosen)


@router.get("/{namespace}")
def profile(page: PageDep, namespace: str) -> Response:
    if not namespace_taken(page.db, namespace):
        raise NotFound(f"No user or organization named {namespace}")
    kinds = (("Models", "model"), ("Datasets", "dataset"), ("Spaces", "space"))
    sections = [
        (title, repo_type, _repos(page, repo_type, "lastModified", PROFILE_ROWS, author=namespace))
        for title, repo_type in kinds
    ]
    org = page.db.scalar(select(Organization).where(Organization.name == namespace))
    context: dict[str, Any] = {}
    if org is not None:
        members = org_members(page.db, org)
        viewer = page.principal
        insider = viewer.is_admin or any(m.name == viewer.name for m in members)
        context = {
            "org": org,
            "members": members,
            "show_roles": insider,
            "can_manage": may_manage(page.db, viewer, org),
        }
    user = None
    if org is None:
        user = page.db.scalar(select(User).where(User.name == namespace))
        context = {"orgs": [o for o, _ in user_orgs(page.db, user)] if user else []}
    context["collections"] = collections.visible(page.db, page.principal, namespace)
    context["followers"], context["following"] = follows.counts(page.db, namespace, user)
    context["is_following"] = follows.is_following(page.db, page.principal, namespace)
    return page.render("profile.html", namespace=namespace, sections=sections, **context)


@router.post("/{namespace}/follow")
async def toggle_follow(page: PageDep, namespace: str) -> Response:
    """The profile's follow button: follow, or unfollow when already following."""
    await page.form()
    page.require_user()
    with write_transaction(page.request.app.state.sessionmaker) as db:
        if follows.is_following(db, page.principal, namespace):
            follows.unfollow(db, page.principal, namespace)
        else:
            follows.follow(db, page.principal, namespace)
    return page.redirect(f"/{quote(namespace)}")
