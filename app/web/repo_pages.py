"""Repo pages: the card, file tree, file view, history, one commit, and repo settings.

Each page is registered under `/{ns}/{name}` (models), `/datasets/…` and `/spaces/…`, like
the download routes. Revisions arrive as one encoded segment (`refs%2Fpr%2F1`) or, for
`refs/pr/N`, unencoded; both are read from the raw path (app/hub/rawpath.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from app.audit.service import Actor, record
from app.auth.permissions import can_write
from app.cards.render import CardRenderer
from app.collections import service as collections
from app.db.engine import write_transaction
from app.deps import BlobsDep, CacheDep
from app.discussions import service as discussions
from app.errors import BadRequest
from app.http import base_url, raw_segments, repo_id_at, split_revision_and_path
from app.likes import service as likes
from app.repos.history import path_history
from app.repos.manage import delete_repo
from app.repos.models import Repo
from app.repos.service import commit_history, get_commit, get_repo, resolve_revision
from app.security import service as security
from app.security.scanner import is_pickle_path
from app.web import dataset_viewer, service
from app.web.pages import Page, PageDep, PageRoute
from app.web.urls import repo_url, settings_url

router = APIRouter(route_class=PageRoute, include_in_schema=False)

COMMITS_PER_PAGE = 30
MAX_VIEWER_OFFSET = 10**12
TYPE_OF_PREFIX = {"datasets": "dataset", "spaces": "space"}
# Tasks the inference widget offers a form for (the inference routes answer them).
WIDGET_TASKS = frozenset(
    {
        "text-classification",
        "token-classification",
        "fill-mask",
        "summarization",
        "translation",
        "text-generation",
        "text2text-generation",
        "feature-extraction",
        "sentence-similarity",
        "zero-shot-classification",
        "question-answering",
        "image-classification",
        "zero-shot-image-classification",
    }
)
WIDGET_EXAMPLES = {
    "fill-mask": "The capital of France is [MASK].",
    "token-classification": "My name is Clara and I live in Berkeley, California.",
    "zero-shot-classification": "I have a problem with my iPhone that needs to be resolved.",
    "summarization": "The tower is 324 metres tall, about the same height as an 81-storey "
    "building, and the tallest structure in Paris.",
    "translation": "My name is Wolfgang and I live in Berlin.",
    "text-generation": "Once upon a time,",
    "text2text-generation": "The capital of France is",
    "feature-extraction": "Today is a sunny day.",
}

Handler = TypeVar("Handler", bound=Callable[..., Any])


def page_route(
    target: APIRouter, suffix: str, methods: tuple[str, ...] = ("GET",)
) -> Callable[[Handler], Handler]:
    """Register a page of target under the model, dataset and space prefixes (datasets first:
    a model route must not read `/datasets/alice/tree` as repo `datasets/alice`)."""

    def register(handler: Handler) -> Handler:
        for prefix in ("/datasets", "/spaces", ""):
            path = f"{prefix}/{{namespace}}/{{name}}{suffix}"
            target.add_api_route(path, handler, methods=list(methods))
        return handler

    return register


def _page_route(suffix: str, methods: tuple[str, ...] = ("GET",)) -> Callable[[Handler], Handler]:
    return page_route(router, suffix, methods)


@dataclass(frozen=True)
class Target:
    repo_type: str
    repo_id: str
    revision: str | None = None
    path: str = ""


def target_of(request: Request) -> Target:
    """`[/datasets|/spaces]/{ns}/{name}[/<word>/<rev>[/<path>]]` from the raw path."""
    segments = raw_segments(request)
    repo_type = TYPE_OF_PREFIX.get(segments[0], "model")
    if repo_type != "model":
        segments = segments[1:]
    repo_id = repo_id_at(segments, 0)
    if len(segments) <= 3:
        return Target(repo_type, repo_id)
    revision, path = split_revision_and_path(segments[3:])
    return Target(repo_type, repo_id, revision, path)


def _revision(page: Page, target: Target, *, content: bool = False) -> service.Revision:
    return service.open_revision(
        page.db, page.principal, target.repo_type, target.repo_id, target.revision, content=content
    )


def render_repo_page(
    page: Page, template: str, rev: service.Revision, tab: str, **context: Any
) -> Response:
    """A page with the repo header: its tabs show Settings to those who may write."""
    can_write = page.session.user is not None and write_access(page, rev.repo)
    liked = likes.likes(page.db, page.principal, rev.repo)
    return page.render(
        template, rev=rev, repo=rev.repo, tab=tab, can_write=can_write, liked=liked, **context
    )


def write_access(page: Page, repo: Repo) -> bool:
    return can_write(page.db, page.principal, repo.namespace, (repo.type, repo.repo_id))


def get_renderer(request: Request) -> CardRenderer:
    renderer: CardRenderer | None = getattr(request.app.state, "card_renderer", None)
    if renderer is None:
        renderer = request.app.state.card_renderer = CardRenderer()
    return renderer


# --- card ------------------------------------------------------------------------------


@_page_route("")
def card_page(
    page: PageDep,
    blobs: BlobsDep,
    cache: CacheDep,
    config: Annotated[str | None, Query(max_length=200)] = None,
    split: Annotated[str | None, Query(max_length=200)] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_VIEWER_OFFSET)] = 0,
    q: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    rev = _revision(page, target_of(page.request))
    renderer = get_renderer(page.request)
    gate = service.gate_of(page.db, page.principal, renderer, rev.repo)
    locked = gate is not None and not gate.standing.access  # no content: no viewer, no widget
    table = None
    if rev.repo.type == "dataset" and not locked:
        wanted = dataset_viewer.Query(config, split, offset, q.strip())
        table = dataset_viewer.viewer_table(
            page, blobs, rev.repo.repo_id, rev.sha, repo_url(rev.repo), wanted
        )
    readme = service.readme_html(page.db, blobs, cache, renderer, rev)
    return render_repo_page(
        page,
        "card.html",
        rev,
        "card",
        readme=readme,
        summary=service.summary(page.db, cache, rev.tree),
        meta=card_facts(rev.repo),
        snippets=snippets(rev.repo, base_url(page.request, page.settings)),
        widget_task=None if locked else widget_task(rev.repo),
        gate=gate,
        widget_chat=bool((rev.repo.derived or {}).get("chat")),
        widget_example=WIDGET_EXAMPLES.get(rev.repo.pipeline_tag or "", "I love this model!"),
        viewer=table,
        in_collections=collections.containing(page.db, page.principal, rev.repo),
    )


def widget_task(repo: Repo) -> str | None:
    """The task the inference widget offers a form for, if any."""
    if repo.type == "model" and repo.pipeline_tag in WIDGET_TASKS:
        return repo.pipeline_tag
    return None


def card_facts(repo: Repo) -> dict[str, list[str]]:
    """The metadata panel's lists, from the card's YAML (already parsed at commit time)."""
    data = repo.card_data or {}
    facts = {
        "license": _strings(data.get("license")),
        "datasets": _strings(data.get("datasets")),
        "languages": _strings(data.get("language")),
        "base_model": _strings(data.get("base_model")),
        "task_categories": _strings(data.get("task_categories")),  # datasets
        "size": _strings(data.get("size_categories")),
    }
    shown = {repo.library_name, repo.pipeline_tag, *facts["languages"]}
    facts["tags"] = [t for t in repo.tags if ":" not in t and t not in shown]
    return facts


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def snippets(repo: Repo, base: str) -> list[tuple[str, str]]:
    """(title, code) of the "Use this repo" block, pointed at this server."""
    repo_id, kind = repo.repo_id, repo.type
    type_arg = "" if kind == "model" else f', repo_type="{kind}"'
    out = [
        (
            "huggingface_hub",
            f"# export HF_ENDPOINT={base}\nfrom huggingface_hub import snapshot_download\n\n"
            f'path = snapshot_download("{repo_id}"{type_arg})',
        )
    ]
    if kind == "model":
        out.append(
            (
                "transformers",
                f"# export HF_ENDPOINT={base}\nfrom transformers import AutoModel\n\n"
                f'model = AutoModel.from_pretrained("{repo_id}")',
            )
        )
    elif kind == "dataset":
        out.append(
            (
                "datasets",
                f"# export HF_ENDPOINT={base}\nfrom datasets import load_dataset\n\n"
                f'ds = load_dataset("{repo_id}")',
            )
        )
    out.append(("git", f"git lfs install\ngit clone {base}{repo_url(repo)}"))
    return out


# --- files -----------------------------------------------------------------------------


@_page_route("/tree/{rest:path}")
def tree_page(page: PageDep, cache: CacheDep, p: int = 1) -> Response:
    target = target_of(page.request)
    rev = service.with_refs(page.db, _revision(page, target))
    listing = service.folder(page.db, cache, rev, target.path, p)
    return render_repo_page(
        page,
        "tree.html",
        rev,
        "files",
        folder=listing,
        crumbs=service.breadcrumbs(listing.path),
        summary=service.summary(page.db, cache, rev.tree),
    )


@_page_route("/blob/{rest:path}")
def blob_page(page: PageDep, blobs: BlobsDep, cache: CacheDep) -> Response:
    target = target_of(page.request)
    rev = service.with_refs(page.db, _revision(page, target, content=True))
    view = service.blob_view(page.db, blobs, cache, rev, target.path)
    return render_repo_page(
        page,
        "blob.html",
        rev,
        "files",
        view=view,
        crumbs=service.breadcrumbs(target.path),
        max_inline=service.MAX_INLINE_TEXT,
        is_pickle=is_pickle_path(view.entry.path),
        pickle_scan=security.scan_of(page.db, view.entry),
        tensors=service.safetensors_view(page.db, blobs, view.entry),
    )


@_page_route("/blame/{rest:path}")
def blame_page(page: PageDep, blobs: BlobsDep) -> Response:
    """Each line of a text file beside the commit that last changed it."""
    target = target_of(page.request)
    rev = service.with_refs(page.db, _revision(page, target, content=True))
    lines = service.blame(page.db, blobs, rev, target.path)
    if lines is None:
        raise BadRequest(
            f"Blame is shown for text files up to {service.MAX_BLAME_TEXT // 1024} KiB"
        )
    return render_repo_page(
        page,
        "blame.html",
        rev,
        "files",
        path=target.path,
        lines=lines,
        crumbs=service.breadcrumbs(target.path),
    )


# --- history ---------------------------------------------------------------------------


@_page_route("/commits/{rest:path}")
def commits_page(page: PageDep, p: int = 1) -> Response:
    """A revision's history, or with a path (`/commits/main/src/a.py`) that path's."""
    target = target_of(page.request)
    rev = service.with_refs(page.db, _revision(page, target))
    number = max(p, 1)
    window = {"limit": COMMITS_PER_PAGE, "offset": (number - 1) * COMMITS_PER_PAGE}
    if target.path:
        commits, more = path_history(page.db, rev.sha, target.path, **window)
    else:
        commits, more = commit_history(page.db, rev.sha, **window)
    return render_repo_page(
        page,
        "commits.html",
        rev,
        "commits",
        commits=commits,
        page_number=number,
        more=more,
        path=target.path,
    )


@_page_route("/commit/{sha}")
def commit_page(page: PageDep, blobs: BlobsDep, cache: CacheDep, sha: str) -> Response:
    target = target_of(page.request)
    repo = get_repo(page.db, page.principal, target.repo_type, target.repo_id, content=True)
    # Resolved within the repo: a sha of another (private) repo is not found here.
    commit = get_commit(page.db, resolve_revision(page.db, repo, sha))
    changes = service.commit_changes(page.db, blobs, cache, commit)
    rev = service.Revision(repo, commit.sha, commit)
    pulls = discussions.threads_of_commit(page.db, repo, commit.sha)
    return render_repo_page(
        page, "commit.html", rev, "commits", commit=commit, changes=changes, pulls=pulls
    )


@_page_route("/compare/{spec:path}")
def compare_page(page: PageDep, blobs: BlobsDep, cache: CacheDep, spec: str) -> Response:
    """`/compare/BASE...HEAD`: what changed from one revision (branch, tag or sha) to another,
    with the commit page's diff view."""
    target = target_of(page.request)
    base, dots, head = spec.partition("...")
    if not dots or not base or not head:
        raise BadRequest("Compare two revisions as /compare/BASE...HEAD, e.g. main...dev")
    repo = get_repo(page.db, page.principal, target.repo_type, target.repo_id, content=True)
    old = get_commit(page.db, resolve_revision(page.db, repo, base))
    new = get_commit(page.db, resolve_revision(page.db, repo, head))
    changes = service.tree_changes(page.db, blobs, cache, old.tree_sha, new.tree_sha)
    rev = service.Revision(repo, new.sha, new)
    return render_repo_page(
        page,
        "compare.html",
        rev,
        "commits",
        base=base,
        head=head,
        old=old,
        new=new,
        changes=changes,
        new_rev=new.sha,
        old_rev=old.sha,
    )


# --- settings --------------------------------------------------------------------------


def writable(page: Page) -> Repo:
    page.require_user()
    target = target_of(page.request)
    return get_repo(page.db, page.principal, target.repo_type, target.repo_id, write=True)


@_page_route("/settings")
def settings_page(page: PageDep) -> Response:
    repo = writable(page)
    rev = service.open_revision(page.db, page.principal, repo.type, repo.repo_id, None)
    review = service.review_of(page.db, repo)
    return render_repo_page(page, "repo_settings.html", rev, "settings", review=review)


@_page_route("/settings/visibility", methods=("POST",))
async def set_visibility(page: PageDep) -> Response:
    form = await page.form()
    repo = writable(page)
    with write_transaction(page.request.app.state.sessionmaker) as db:
        fresh = db.get(Repo, repo.id)
        assert fresh is not None
        private = form.get("visibility") == "private"
        if private != fresh.private:
            actor = Actor.of(page.request, page.principal, "web")
            record(db, actor, "repo.visibility", fresh.repo_id, type=fresh.type, private=private)
        fresh.private = private
    return page.redirect(settings_url(repo))


@_page_route("/like", methods=("POST",))
async def toggle_like(page: PageDep) -> Response:
    """The like button: like, or unlike when already liked."""
    await page.form()
    page.require_user()
    target = target_of(page.request)
    with write_transaction(page.request.app.state.sessionmaker) as db:
        repo = get_repo(db, page.principal, target.repo_type, target.repo_id)
        if likes.likes(db, page.principal, repo):
            likes.unlike(db, page.principal, repo)
        else:
            likes.like(db, page.principal, repo)
        url = repo_url(repo)
    return page.redirect(url)


@_page_route("/settings/delete", methods=("POST",))
async def delete_from_settings(page: PageDep) -> Response:
    form = await page.form()
    repo = writable(page)
    owner = page.require_user().name
    if form.get("confirm", "").strip() != repo.repo_id:
        raise BadRequest(f"Type {repo.repo_id} to confirm the deletion")
    with write_transaction(page.request.app.state.sessionmaker) as db:
        fresh = db.scalar(select(Repo).where(Repo.id == repo.id))
        if fresh is not None:
            actor = Actor.of(page.request, page.principal, "web")
            record(db, actor, "repo.delete", fresh.repo_id, type=fresh.type)
            delete_repo(db, fresh, actor)
    return page.redirect(f"/{owner}")
