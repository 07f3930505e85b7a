"""The Community tab: a repo's discussions and pull requests in the browser.

- `/{repo}/discussions?status=open|closed|merged|all`: the threads, with counts per status;
- `/{repo}/discussions/new`: a new discussion (or a draft pull request);
- `/{repo}/discussions/{num}`: the thread — comments as sanitized Markdown, status and title
  changes, the commits of a pull request — with a comment box, rename, close/reopen, hide
  (writers) and merge (writers);
- `/{repo}/discussions/{num}/files`: a pull request's changes against its base.

Every action is a CSRF-checked form that calls app.discussions.service, the API's rules.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from app.auth.permissions import can_discuss
from app.db.engine import write_transaction
from app.deps import BlobsDep, CacheDep
from app.discussions import service as discussions
from app.discussions.models import DRAFT, MERGED, OPEN
from app.errors import BadRequest
from app.repos.models import Repo
from app.repos.service import get_commit, get_repo
from app.web import service
from app.web.pages import Page, PageDep, PageRoute
from app.web.repo_pages import page_route, render_repo_page, target_of, write_access
from app.web.urls import repo_url

router = APIRouter(route_class=PageRoute, include_in_schema=False)
FILTERS = ("open", "closed", "merged", "all")


def _revision(page: Page) -> service.Revision:
    target = target_of(page.request)
    return service.open_revision(
        page.db, page.principal, target.repo_type, target.repo_id, None, content=True
    )


def _thread_url(repo: Repo, num: int) -> str:
    return f"{repo_url(repo)}/discussions/{num}"


def _may_discuss(page: Page, repo: Repo) -> bool:
    key = (repo.type, repo.repo_id)
    return can_discuss(page.db, page.principal, repo.namespace, repo.private, key)


@page_route(router, "/discussions")
def list_page(
    page: PageDep,
    status: Annotated[str, Query(max_length=10)] = "open",
    p: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    rev = _revision(page)
    wanted = status if status in FILTERS else "open"
    rows, total = discussions.threads(
        page.db, rev.repo, status=None if wanted == "all" else wanted, page=p - 1
    )
    by_status = discussions.counts(page.db, rev.repo)
    tallies = {
        "open": by_status.get(OPEN, 0) + by_status.get(DRAFT, 0),
        "closed": by_status.get("closed", 0) + by_status.get(MERGED, 0),
        "merged": by_status.get(MERGED, 0),
        "all": sum(by_status.values()),
    }
    return render_repo_page(
        page,
        "discussions.html",
        rev,
        "community",
        threads=rows,
        total=total,
        status=wanted,
        tallies=tallies,
        page_number=p,
        more=p * discussions.PAGE_SIZE < total,
        may_discuss=_may_discuss(page, rev.repo),
    )


@page_route(router, "/discussions/new")
def new_page(page: PageDep) -> Response:
    page.require_user()
    rev = _revision(page)
    discussions.require_participant(page.db, page.principal, rev.repo)
    return render_repo_page(page, "discussion_new.html", rev, "community")


@page_route(router, "/discussions/new", ("POST",))
async def create(page: PageDep) -> Response:
    form = await page.form()
    page.require_user()
    target = target_of(page.request)
    with write_transaction(page.request.app.state.sessionmaker) as db:
        repo = get_repo(db, page.principal, target.repo_type, target.repo_id, content=True)
        thread = discussions.open_thread(
            db,
            page.principal,
            repo,
            title=form.get("title", ""),
            description=form.get("description", ""),
            pull_request=form.get("kind") == "pull_request",
            actor=page.actor(),
        )
        url = _thread_url(repo, thread.num)
    return page.redirect(url)


def _number(page: Page) -> int:
    raw = str(page.request.path_params.get("num", ""))
    if not raw.isdigit() or len(raw) > 9:
        raise BadRequest("A discussion number is a positive integer")
    return int(raw)


@page_route(router, "/discussions/{num}")
def thread_page(page: PageDep) -> Response:
    rev = _revision(page)
    repo, db = rev.repo, page.db
    thread = discussions.find(db, repo, _number(page))
    rows = discussions.events(db, thread)
    users = discussions.users_by_id(db, [thread.author_id, *(e.author_id for e in rows)])
    view = discussions.merge_view(db, repo, thread) if thread.is_pull_request else None
    viewer = page.principal.user
    writer = page.session.user is not None and write_access(page, repo)
    is_author = viewer is not None and thread.author_id == viewer.id
    return render_repo_page(
        page,
        "discussion.html",
        rev,
        "community",
        thread=thread,
        events=rows,
        users=users,
        view=view,
        writer=writer,
        moderator=writer or is_author,
        may_discuss=_may_discuss(page, repo),
        viewer_id=viewer.id if viewer else None,
        hidden_text=discussions.HIDDEN_TEXT,
    )


@page_route(router, "/discussions/{num}/files")
def files_page(page: PageDep, blobs: BlobsDep, cache: CacheDep) -> Response:
    rev = _revision(page)
    repo = rev.repo
    thread = discussions.find(page.db, repo, _number(page))
    if not thread.is_pull_request or thread.base_sha is None:
        raise BadRequest(f"#{thread.num} is a discussion: it changes no files")
    view = discussions.merge_view(page.db, repo, thread)
    base_tree = get_commit(page.db, thread.base_sha).tree_sha
    head_tree = get_commit(page.db, view.head).tree_sha
    changes = service.tree_changes(page.db, blobs, cache, base_tree, head_tree)
    return render_repo_page(
        page,
        "discussion_files.html",
        rev,
        "community",
        thread=thread,
        view=view,
        changes=changes,
        new_rev=view.head,
        old_rev=thread.base_sha,
    )


async def _act(page: Page, action: str) -> Response:
    form = await page.form()
    page.require_user()
    target = target_of(page.request)
    num = _number(page)
    factory = page.request.app.state.sessionmaker
    if action == "merge":
        with factory() as db:
            repo_id = get_repo(
                db, page.principal, target.repo_type, target.repo_id, content=True
            ).id
        blobs = page.request.app.state.blobs
        text = form.get("comment", "").strip() or None
        discussions.merge(factory, blobs, page.principal, repo_id, num, page.actor(), text)
    with write_transaction(factory) as db:
        repo = get_repo(db, page.principal, target.repo_type, target.repo_id, content=True)
        thread = discussions.find(db, repo, num)
        principal = page.principal
        if action == "comment":
            discussions.comment(db, principal, repo, thread, form.get("comment", ""))
        elif action == "status":
            text = form.get("comment", "").strip() or None
            discussions.change_status(db, principal, repo, thread, form.get("status", ""), text)
        elif action == "title":
            discussions.rename(db, principal, repo, thread, form.get("title", ""))
        elif action == "hide":
            discussions.hide_comment(db, principal, repo, thread, form.get("event", ""))
        url = _thread_url(repo, num)
    return page.redirect(url)


@page_route(router, "/discussions/{num}/comment", ("POST",))
async def post_comment(page: PageDep) -> Response:
    return await _act(page, "comment")


@page_route(router, "/discussions/{num}/status", ("POST",))
async def post_status(page: PageDep) -> Response:
    return await _act(page, "status")


@page_route(router, "/discussions/{num}/title", ("POST",))
async def post_title(page: PageDep) -> Response:
    return await _act(page, "title")


@page_route(router, "/discussions/{num}/hide", ("POST",))
async def post_hide(page: PageDep) -> Response:
    return await _act(page, "hide")


@page_route(router, "/discussions/{num}/merge", ("POST",))
async def post_merge(page: PageDep) -> Response:
    return await _act(page, "merge")
