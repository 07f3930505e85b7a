"""Discussions and pull requests, the Hub's API as huggingface_hub calls it (hf_api.py,
"Discussions" and community.py):

- `GET  /api/{plural}/{ns}/{name}/discussions?type=&status=&author=&p=` → `{discussions, count,
  start, numClosedDiscussions}`, newest first, 50 a page;
- `POST …/discussions` `{title, description, pullRequest}` → `{num, url, …}`;
- `GET  …/discussions/{num}[?diff=1]` → the thread, its events, and for a pull request its
  `changes.base`, `changes.mergeCommitId`, `filesWithConflicts` and `diff`;
- `POST …/discussions/{num}/comment` `{comment}` → `{newMessage}`; `…/title` `{title}` →
  `{newTitle}`; `…/status` `{status, comment?}` → `{newStatus}`; `…/merge` `{comment?}`;
  `…/comment/{id}/edit` `{content}` and `…/comment/{id}/hide` → `{updatedComment}`.

A repo the caller may not read answers 404 on every route, its threads included; a gated
repo's threads need access to it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from app.audit.service import Actor
from app.auth.permissions import Principal
from app.db.engine import write_transaction
from app.deps import BlobsDep, FactoryDep, PrincipalDep, SessionDep
from app.discussions import service
from app.discussions.models import CLOSED, MERGED
from app.errors import BadRequest, NotFound
from app.http import base_url
from app.repos.models import Repo
from app.repos.paths import PLURALS
from app.repos.service import get_repo

router = APIRouter(tags=["discussions"])
THREADS = "/api/{plural}/{namespace}/{name}/discussions"
THREAD = THREADS + "/{num}"
TEXT = service.MAX_COMMENT


class NewThread(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(max_length=1000)
    description: str | None = Field(default=None, max_length=TEXT)
    pullRequest: bool = False


class CommentBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    comment: str = Field(max_length=TEXT)


class EditBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    content: str = Field(max_length=TEXT)


class TitleBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    title: str = Field(max_length=1000)


class StatusBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: str
    comment: str | None = Field(default=None, max_length=TEXT)


class MergeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    comment: str | None = Field(default=None, max_length=TEXT)


def _repo(session: Session, principal: Principal, plural: str, namespace: str, name: str) -> Repo:
    repo_type = PLURALS.get(plural)
    if repo_type is None:
        raise NotFound(f"Unknown repo type {plural!r}")
    return get_repo(session, principal, repo_type, f"{namespace}/{name}", content=True)


def thread_url(request: Request, repo: Repo, num: int) -> str:
    base = base_url(request, request.app.state.settings)
    return f"{base}{repo.page_path}/discussions/{num}"


@router.get(THREADS)
def list_threads(
    plural: str,
    namespace: str,
    name: str,
    session: SessionDep,
    principal: PrincipalDep,
    type: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    author: Annotated[str | None, Query(max_length=96)] = None,
    p: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> JSONResponse:
    repo = _repo(session, principal, plural, namespace, name)
    kind = None if type in (None, "all") else type
    if kind not in (None, "discussion", "pull_request"):
        raise BadRequest("type must be all, discussion or pull_request")
    wanted = None if status in (None, "all") else status
    if wanted not in (None, "open", "closed", "draft", "merged"):
        raise BadRequest("status must be all, open, closed, draft or merged")
    rows, total = service.threads(session, repo, author=author, kind=kind, status=wanted, page=p)
    by_status = service.counts(session, repo)
    return JSONResponse(
        {
            "discussions": [service.summary_json(repo, row) for row in rows],
            "count": total,
            "start": p * service.PAGE_SIZE,
            "numClosedDiscussions": by_status.get(CLOSED, 0) + by_status.get(MERGED, 0),
        }
    )


@router.post(THREADS)
def open_thread(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    body: NewThread,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    with write_transaction(factory) as session:
        repo = _repo(session, principal, plural, namespace, name)
        thread = service.open_thread(
            session,
            principal,
            repo,
            title=body.title,
            description=body.description,
            pull_request=body.pullRequest,
            actor=Actor.of(request, principal, "api"),
        )
        num, pull = thread.num, thread.is_pull_request
        url = thread_url(request, repo, num)
    answer: dict[str, Any] = {"num": num, "url": url, "pullRequest": pull}
    if pull:
        answer["ref"] = f"{service.PULLS}{num}"
    return JSONResponse(answer)


@router.get(THREAD)
def thread_details(
    plural: str,
    namespace: str,
    name: str,
    num: int,
    session: SessionDep,
    principal: PrincipalDep,
    blobs: BlobsDep,
    diff: Annotated[str | None, Query(max_length=8)] = None,
) -> JSONResponse:
    repo = _repo(session, principal, plural, namespace, name)
    thread = service.find(session, repo, num)
    with_diff = diff not in (None, "", "0", "false")
    return JSONResponse(service.details_json(session, blobs, repo, thread, with_diff=with_diff))


def _change(
    plural: str,
    namespace: str,
    name: str,
    num: int,
    principal: Principal,
    factory: Any,
    key: str,
    act: Any,
) -> JSONResponse:
    """Apply act(session, repo, thread) in one transaction; answer `{key: event}`."""
    with write_transaction(factory) as session:
        repo = _repo(session, principal, plural, namespace, name)
        thread = service.find(session, repo, num)
        event = act(session, repo, thread)
        answer = {key: service.event_answer(session, event)}
    return JSONResponse(answer)


@router.post(THREAD + "/comment")
def comment(
    plural: str,
    namespace: str,
    name: str,
    num: int,
    body: CommentBody,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    def act(session: Session, repo: Repo, thread: Any) -> Any:
        return service.comment(session, principal, repo, thread, body.comment)

    return _change(plural, namespace, name, num, principal, factory, "newMessage", act)


@router.post(THREAD + "/title")
def rename(
    plural: str,
    namespace: str,
    name: str,
    num: int,
    body: TitleBody,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    def act(session: Session, repo: Repo, thread: Any) -> Any:
        return service.rename(session, principal, repo, thread, body.title)

    return _change(plural, namespace, name, num, principal, factory, "newTitle", act)


@router.post(THREAD + "/status")
def change_status(
    plural: str,
    namespace: str,
    name: str,
    num: int,
    body: StatusBody,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    def act(session: Session, repo: Repo, thread: Any) -> Any:
        return service.change_status(session, principal, repo, thread, body.status, body.comment)

    return _change(plural, namespace, name, num, principal, factory, "newStatus", act)


@router.post(THREAD + "/comment/{comment_id}/edit")
def edit_comment(
    plural: str,
    namespace: str,
    name: str,
    num: int,
    comment_id: str,
    body: EditBody,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    def act(session: Session, repo: Repo, thread: Any) -> Any:
        return service.edit_comment(session, principal, repo, thread, comment_id, body.content)

    return _change(plural, namespace, name, num, principal, factory, "updatedComment", act)


@router.post(THREAD + "/comment/{comment_id}/hide")
def hide_comment(
    plural: str,
    namespace: str,
    name: str,
    num: int,
    comment_id: str,
    principal: PrincipalDep,
    factory: FactoryDep,
) -> JSONResponse:
    def act(session: Session, repo: Repo, thread: Any) -> Any:
        return service.hide_comment(session, principal, repo, thread, comment_id)

    return _change(plural, namespace, name, num, principal, factory, "updatedComment", act)


@router.post(THREAD + "/merge")
def merge(
    request: Request,
    plural: str,
    namespace: str,
    name: str,
    num: int,
    principal: PrincipalDep,
    factory: FactoryDep,
    blobs: BlobsDep,
    body: MergeBody | None = None,  # the client sends none when there is no comment
) -> JSONResponse:
    with factory() as session:
        repo_id = _repo(session, principal, plural, namespace, name).id
    actor = Actor.of(request, principal, "api")
    text = body.comment if body is not None else None
    sha = service.merge(factory, blobs, principal, repo_id, num, actor, text)
    return JSONResponse({"mergeCommitId": sha})
