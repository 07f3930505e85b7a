"""Changing files in the browser: each change is a commit through the same service as the
API's (`app.discussions.contribute`), with a message, on the branch or as a pull request.

- `/{repo}/new/{rev}[/{folder}]`: a new text file;
- `/{repo}/edit/{rev}/{path}`: edit a text file (up to the file page's inline size);
- `/{repo}/delete/{rev}/{path}` (POST): delete a file.

Those who may push to the branch choose "commit to {rev}" or "open a pull request"; anyone who
may take part in discussions can only propose. The forms are CSRF-checked like every other.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from app.audit.service import Actor
from app.auth.permissions import can_discuss
from app.deps import BlobsDep
from app.discussions import service as discussions
from app.discussions.contribute import Change, contribute
from app.errors import AtriumError, BadRequest, Forbidden
from app.repos.commits import AddFile, DeletePath
from app.repos.gitobjects import load_object
from app.repos.paths import validate_path
from app.repos.service import branch_ref_name, find_entry
from app.web import service
from app.web.pages import Page, PageDep, PageRoute
from app.web.repo_pages import page_route, render_repo_page, target_of
from app.web.urls import blob_url, repo_url, tree_url

router = APIRouter(route_class=PageRoute, include_in_schema=False)
MAX_EDITED_TEXT = service.MAX_INLINE_TEXT


def _open(page: Page) -> tuple[service.Revision, str, bool]:
    """(the revision, the path, whether the caller may push to its branch); 403 for those
    who may neither push nor propose."""
    principal = page.require_user()
    target = target_of(page.request)
    rev = service.with_refs(
        page.db,
        service.open_revision(
            page.db, principal, target.repo_type, target.repo_id, target.revision, content=True
        ),
    )
    if rev.name not in rev.branches:
        raise BadRequest(f"{rev.name!r} is not a branch: files change on branches only")
    repo = rev.repo
    try:
        discussions.require_push(page.db, principal, repo, branch_ref_name(rev.name))
        may_push = True
    except AtriumError:
        may_push = False
    key = (repo.type, repo.repo_id)
    if not may_push and not can_discuss(page.db, principal, repo.namespace, repo.private, key):
        raise Forbidden("You may neither change this repo nor propose changes to it")
    return rev, target.path, may_push


def _form(page: Page, rev: service.Revision, may_push: bool, **context: Any) -> Response:
    return render_repo_page(page, "edit.html", rev, "files", may_push=may_push, **context)


async def _submit(
    page: Page,
    blobs: BlobsDep,
    rev: service.Revision,
    may_push: bool,
    operation: AddFile | DeletePath,
    form: dict[str, str],
    default_title: str,
) -> Response:
    propose = form.get("target") == "pr" or not may_push
    change = Change(
        [operation],
        (form.get("title") or "").strip()[:200] or default_title,
        (form.get("description") or "").strip()[:20_000],
        form.get("parent") or None,
    )
    actor = Actor.of(page.request, page.principal, "web")
    done = contribute(
        page.request.app.state.sessionmaker,
        blobs,
        page.settings,
        page.principal,
        rev.repo.id,
        rev.name,
        change,
        create_pr=propose,
        actor=actor,
    )
    if done.pull_request is not None:
        return page.redirect(f"{repo_url(rev.repo)}/discussions/{done.pull_request}")
    if isinstance(operation, DeletePath):
        folder = operation.path.rpartition("/")[0]
        return page.redirect(tree_url(rev.repo, rev.name, folder))
    return page.redirect(blob_url(rev.repo, rev.name, operation.path))


@page_route(router, "/new/{rest:path}")
def new_file_form(page: PageDep, filename: str = "") -> Response:
    rev, folder, may_push = _open(page)
    prefix = f"{folder.strip('/')}/" if folder.strip("/") else ""
    return _form(page, rev, may_push, mode="new", path=prefix + filename[:255], text="")


@page_route(router, "/new/{rest:path}", methods=("POST",))
async def new_file(page: PageDep, blobs: BlobsDep) -> Response:
    form = await page.form()
    rev, _folder, may_push = _open(page)
    path = validate_path((form.get("path") or "").strip())
    if find_entry(page.db, rev.tree, path) is not None:
        raise BadRequest(f"{path!r} exists already; edit it instead")
    content = (form.get("content") or "").replace("\r\n", "\n").encode()
    return await _submit(page, blobs, rev, may_push, AddFile(path, content), form, f"Create {path}")


def _text_file(page: Page, rev: service.Revision, path: str, blobs: BlobsDep) -> str:
    entry = find_entry(page.db, rev.tree, path)
    if entry is None or entry.is_dir:
        raise BadRequest(f"No file {path!r} on {rev.name}")
    if entry.lfs_oid is not None or entry.size > MAX_EDITED_TEXT:
        raise BadRequest(f"{path!r} is a large file; upload a new version instead")
    text = service.as_text(load_object(blobs, entry.oid).as_raw_string())
    if text is None:
        raise BadRequest(f"{path!r} is not a text file")
    return text


@page_route(router, "/edit/{rest:path}")
def edit_file_form(page: PageDep, blobs: BlobsDep) -> Response:
    rev, path, may_push = _open(page)
    text = _text_file(page, rev, path, blobs)
    return _form(page, rev, may_push, mode="edit", path=path, text=text, parent=rev.sha)


@page_route(router, "/edit/{rest:path}", methods=("POST",))
async def edit_file(page: PageDep, blobs: BlobsDep) -> Response:
    form = await page.form()
    rev, path, may_push = _open(page)
    _text_file(page, rev, path, blobs)
    content = (form.get("content") or "").replace("\r\n", "\n").encode()
    return await _submit(page, blobs, rev, may_push, AddFile(path, content), form, f"Update {path}")


@page_route(router, "/delete/{rest:path}", methods=("POST",))
async def delete_file(page: PageDep, blobs: BlobsDep) -> Response:
    form = await page.form()
    rev, path, may_push = _open(page)
    entry = find_entry(page.db, rev.tree, path)
    if entry is None or entry.is_dir:
        raise BadRequest(f"No file {path!r} on {rev.name}")
    return await _submit(page, blobs, rev, may_push, DeletePath(path), form, f"Delete {path}")
