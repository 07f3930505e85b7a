"""Discussions and pull requests (no HTTP here).

Who may do what, as on the Hub (ARCHITECTURE.md §6):

- anyone who may read a repo reads its threads (a gated repo's: those with access, since a
  pull request's diff is content);
- a signed-in reader with a token that may write — or a fine-grained token with `discussion`
  or `write` on the repo — opens discussions and pull requests, comments, edits their own
  comments, renames and closes or reopens their own threads, and pushes commits to their own
  pull requests (`can_discuss`);
- the repo's writers also push to every pull request, rename, close and reopen any thread,
  hide comments and merge.

A pull request is also its ref `refs/pr/N`, started at its target branch's head (`base_sha`);
commits reach it through the API or git, and the ref service's `repo.ref_moved` events become
the thread's commit events (`PullRequestCommits`). Merging applies the files the pull request
changed since `base_sha` onto the target branch as one new commit whose message names the pull
request — with the same compare-and-swap as every commit, and the thread marked merged in the
transaction that moves the branch. A file changed both ways differently is a conflict: the
merge is refused, naming the files.
"""

from __future__ import annotations

import difflib
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.audit.service import Actor
from app.auth.models import User
from app.auth.permissions import Principal, can_discuss, can_write, require_write
from app.blobs import BlobStore
from app.cards.render import CardRenderer, LinkBase
from app.db.base import utcnow
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.discussions.models import (
    CLOSED,
    COMMENT,
    COMMIT,
    DRAFT,
    MERGED,
    OPEN,
    STATUS_CHANGE,
    TITLE_CHANGE,
    Discussion,
    DiscussionEvent,
)
from app.errors import BadRequest, Conflict, Forbidden, NotFound, RevisionNotFound, Unauthorized
from app.http import iso_z
from app.repos import manage
from app.repos.commits import Author, CommitPlan, DeletePath, KeepFile, Operation, create_commit
from app.repos.gitobjects import load_object
from app.repos.models import Commit, Ref, Repo, RepoEvent
from app.repos.service import HEADS, FileEntry, get_commit, get_ref, list_entries
from app.webhooks import service as webhooks

PULLS = manage.PULLS
MAX_TITLE = 200
MAX_COMMENT = 65_536  # characters of one comment
MAX_EDITS = 100  # versions kept of one comment
PAGE_SIZE = 50  # threads per page of the listing, as the Hub pages them
MAX_COMMIT_EVENTS = 100  # commits recorded for one push to a pull request
MAX_DIFF_FILES = 300
MAX_DIFF_FILE_BYTES = 1_000_000
MAX_DIFF_BYTES = 5_000_000
HIDDEN_TEXT = "This comment has been hidden"
_renderer = CardRenderer()


def _uid() -> str:
    return secrets.token_hex(12)


def render(repo: Repo, text: str) -> str:
    """A comment as sanitized HTML: the card renderer, links resolved in the repo."""
    return _renderer.render(text, LinkBase(repo.page_path))


# --- who may ------------------------------------------------------------------------------


def is_writer(session: Session, principal: Principal, repo: Repo) -> bool:
    return can_write(session, principal, repo.namespace, (repo.type, repo.repo_id))


def require_participant(session: Session, principal: Principal, repo: Repo) -> None:
    if principal.user is None:
        raise Unauthorized("You must be authenticated to take part in discussions")
    key = (repo.type, repo.repo_id)
    if not can_discuss(session, principal, repo.namespace, repo.private, key):
        raise Forbidden(
            "This token may not write to discussions: use a write token, or a fine-grained "
            f"token with the discussion permission on {repo.repo_id}"
        )


def _is_author(principal: Principal, thread: Discussion) -> bool:
    return principal.user is not None and thread.author_id == principal.user.id


def require_moderator(
    session: Session, principal: Principal, repo: Repo, thread: Discussion, what: str
) -> None:
    """The thread's author or the repo's writers."""
    require_participant(session, principal, repo)
    if not _is_author(principal, thread) and not is_writer(session, principal, repo):
        raise Forbidden(f"Only the author of #{thread.num} and the repo's writers may {what}")


def require_writer(session: Session, principal: Principal, repo: Repo, what: str) -> None:
    require_participant(session, principal, repo)
    if not is_writer(session, principal, repo):
        raise Forbidden(f"Only the repo's writers may {what}")


def pr_number(ref_name: str) -> int | None:
    """N of `refs/pr/N`, else None."""
    rest = ref_name.removeprefix(PULLS) if ref_name.startswith(PULLS) else ""
    return int(rest) if rest.isdigit() and not rest.startswith("0") else None


def require_push(session: Session, principal: Principal, repo: Repo, ref_name: str) -> None:
    """A commit to `ref_name` by a caller who may read the repo: writers push anywhere, a pull
    request's author to their own open pull request."""
    number = pr_number(ref_name)
    if number is None:
        key = (repo.type, repo.repo_id)
        try:
            require_write(session, principal, repo.namespace, key)
        except Forbidden as exc:
            if can_discuss(session, principal, repo.namespace, repo.private, key):
                hint = "; open a pull request and push to its refs/pr/N instead"
                raise Forbidden(exc.message.rstrip(".") + hint) from None
            raise
        return
    thread = find(session, repo, number)
    if thread.is_pull_request is False:
        raise RevisionNotFound(f"Invalid rev id: {ref_name}")
    if is_writer(session, principal, repo):
        return
    require_participant(session, principal, repo)
    if not _is_author(principal, thread):
        raise Forbidden(f"Only the author of #{number} and the repo's writers may push to it")
    if thread.status in (MERGED, CLOSED):
        raise BadRequest(f"Pull request #{number} is {thread.status}; reopen it to push")


# --- threads ------------------------------------------------------------------------------


def find(session: Session, repo: Repo, num: int) -> Discussion:
    thread = session.scalar(
        select(Discussion).where(Discussion.repo_id == repo.id, Discussion.num == num)
    )
    if thread is None:
        raise NotFound(f"Discussion #{num} not found in {repo.repo_id}")
    return thread


def _next_number(session: Session, repo: Repo) -> int:
    """After every thread and every `refs/pr/N` (a ref without a thread keeps its number).
    The repo row is locked first, so two threads opened at once get two numbers."""
    session.execute(select(Repo.id).where(Repo.id == repo.id).with_for_update())
    top = session.scalar(select(func.max(Discussion.num)).where(Discussion.repo_id == repo.id))
    names = session.scalars(
        select(Ref.name).where(Ref.repo_id == repo.id, Ref.name.startswith(PULLS))
    )
    numbers = [n for n in (pr_number(name) for name in names) if n is not None]
    return max([top or 0, *numbers]) + 1


def _clean_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise BadRequest("A discussion needs a title")
    if len(title) > MAX_TITLE:
        raise BadRequest(f"The title is longer than {MAX_TITLE} characters")
    return title


def _check_comment(text: str) -> str:
    if not text.strip():
        raise BadRequest("The comment is empty")
    if len(text) > MAX_COMMENT:
        raise BadRequest(f"The comment is longer than {MAX_COMMENT} characters")
    return text


def open_thread(
    session: Session,
    principal: Principal,
    repo: Repo,
    *,
    title: str,
    description: str | None,
    pull_request: bool,
    actor: Actor,
    target: str | None = None,
    status: str | None = None,
) -> Discussion:
    """A new discussion, or a pull request (its ref started at the target branch's head;
    `draft` unless status says otherwise). Its first comment is the description."""
    require_participant(session, principal, repo)
    assert principal.user is not None
    title = _clean_title(title)
    if description is not None and description.strip():
        _check_comment(description)
    number = _next_number(session, repo)
    thread = Discussion(
        repo_id=repo.id,
        num=number,
        title=title,
        author_id=principal.user.id,
        is_pull_request=pull_request,
        status=status or (DRAFT if pull_request else OPEN),
    )
    if pull_request:
        branch = HEADS + (target or "main").removeprefix(HEADS)
        ref = get_ref(session, repo, branch)
        if ref is None:
            raise RevisionNotFound(
                f"Invalid rev id: {target}: a pull request targets an existing branch"
            )
        thread.target_branch, thread.base_sha = branch, ref.commit_sha
        manage.create_ref(session, repo, f"{PULLS}{number}", ref.commit_sha, actor)
    session.add(thread)
    session.flush()
    if description is not None and description.strip():
        _add_comment(session, repo, thread, principal.user, description, notify=False)
    _notify(session, repo, thread, "discussion", "create", f"discussion:{thread.id}:create")
    return thread


def _thread_json(session: Session, thread: Discussion) -> dict[str, Any]:
    author = session.get(User, thread.author_id) if thread.author_id else None
    return {
        "num": thread.num,
        "title": thread.title,
        "status": thread.status,
        "isPullRequest": thread.is_pull_request,
        "author": {"name": author.name} if author else None,
    }


def _notify(
    session: Session,
    repo: Repo,
    thread: Discussion,
    scope: str,
    action: str,
    key: str,
    event: DiscussionEvent | None = None,
) -> None:
    """Webhooks watching the repo's discussions hear of it, in this transaction."""
    comment = None
    if event is not None:
        latest = (event.data.get("history") or [{}])[-1]
        author = session.get(User, event.author_id) if event.author_id else None
        comment = {
            "id": event.uid,
            "content": latest.get("raw", ""),
            "hidden": event.hidden,
            "author": {"name": author.name} if author else None,
        }
    webhooks.enqueue_discussion(
        session, repo, scope, action, key, _thread_json(session, thread), comment
    )


def discard(session: Session, repo: Repo, num: int, actor: Actor) -> None:
    """Remove a pull request that never got its first commit (its thread and its ref), so
    that its number is given again."""
    thread = find(session, repo, num)
    if get_ref(session, repo, f"{PULLS}{num}") is not None:
        manage.delete_ref(session, repo, f"{PULLS}{num}", actor)
    session.delete(thread)


@dataclass(frozen=True)
class Listed:
    thread: Discussion
    author: User | None
    comments: int


def threads(
    session: Session,
    repo: Repo,
    *,
    author: str | None = None,
    kind: str | None = None,
    status: str | None = None,
    page: int = 0,
    size: int = PAGE_SIZE,
) -> tuple[list[Listed], int]:
    """One page of the repo's threads, newest first, and how many match in all. `status`
    open also lists drafts, closed also merged pull requests."""
    query = select(Discussion).where(Discussion.repo_id == repo.id)
    if kind == "pull_request":
        query = query.where(Discussion.is_pull_request.is_(True))
    elif kind == "discussion":
        query = query.where(Discussion.is_pull_request.is_(False))
    if status == "open":
        query = query.where(Discussion.status.in_((OPEN, DRAFT)))
    elif status == "closed":
        query = query.where(Discussion.status.in_((CLOSED, MERGED)))
    elif status in (DRAFT, MERGED):
        query = query.where(Discussion.status == status)
    if author:
        user_id = session.scalar(select(User.id).where(User.name == author))
        query = query.where(Discussion.author_id == (user_id if user_id is not None else -1))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(
        session.scalars(query.order_by(Discussion.num.desc()).offset(page * size).limit(size))
    )
    users = users_by_id(session, [r.author_id for r in rows])
    comments = {
        thread_id: number
        for thread_id, number in session.execute(
            select(DiscussionEvent.discussion_id, func.count())
            .where(
                DiscussionEvent.discussion_id.in_([r.id for r in rows]),
                DiscussionEvent.type == COMMENT,
            )
            .group_by(DiscussionEvent.discussion_id)
        ).tuples()
    }
    listed = [Listed(r, users.get(r.author_id or 0), comments.get(r.id, 0)) for r in rows]
    return listed, total


def counts(session: Session, repo: Repo) -> dict[str, int]:
    """Threads by status, for the Community tab."""
    rows = session.execute(
        select(Discussion.status, func.count())
        .where(Discussion.repo_id == repo.id)
        .group_by(Discussion.status)
    ).tuples()
    return {status: number for status, number in rows}


def threads_of_commit(session: Session, repo: Repo, sha: str) -> list[Discussion]:
    """The pull requests a commit was pushed to, or merged by."""
    pushed = select(DiscussionEvent.discussion_id).where(DiscussionEvent.commit_oid == sha)
    query = select(Discussion).where(
        Discussion.repo_id == repo.id,
        (Discussion.id.in_(pushed)) | (Discussion.merge_commit == sha),
    )
    return list(session.scalars(query.order_by(Discussion.num)))


def users_by_id(session: Session, ids: Iterable[int | None]) -> dict[int, User]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(wanted)))}


def events(session: Session, thread: Discussion) -> list[DiscussionEvent]:
    return list(
        session.scalars(
            select(DiscussionEvent)
            .where(DiscussionEvent.discussion_id == thread.id)
            .order_by(DiscussionEvent.id)
        )
    )


# --- events -------------------------------------------------------------------------------


def _add_event(
    session: Session, thread: Discussion, kind: str, user: User | None, data: dict[str, Any]
) -> DiscussionEvent:
    event = DiscussionEvent(
        uid=_uid(),
        discussion_id=thread.id,
        type=kind,
        author_id=user.id if user else None,
        data=data,
    )
    session.add(event)
    thread.updated_at = utcnow()
    session.flush()
    return event


def _version(repo: Repo, user: User, text: str) -> dict[str, Any]:
    return {"raw": text, "html": render(repo, text), "at": iso_z(utcnow()), "author": user.name}


def _add_comment(
    session: Session,
    repo: Repo,
    thread: Discussion,
    user: User,
    text: str,
    *,
    notify: bool = True,
) -> DiscussionEvent:
    data = {"history": [_version(repo, user, _check_comment(text))]}
    event = _add_event(session, thread, COMMENT, user, data)
    if notify:
        key = f"comment:{event.uid}"
        _notify(session, repo, thread, "discussion.comment", "create", key, event)
    return event


def comment(
    session: Session, principal: Principal, repo: Repo, thread: Discussion, text: str
) -> DiscussionEvent:
    require_participant(session, principal, repo)
    assert principal.user is not None
    return _add_comment(session, repo, thread, principal.user, text)


def _comment_event(session: Session, thread: Discussion, uid: str) -> DiscussionEvent:
    event = session.scalar(
        select(DiscussionEvent).where(
            DiscussionEvent.uid == uid.lower(), DiscussionEvent.discussion_id == thread.id
        )
    )
    if event is None or event.type != COMMENT:
        raise NotFound(f"Comment {uid[:40]!r} not found in #{thread.num}")
    return event


def edit_comment(
    session: Session,
    principal: Principal,
    repo: Repo,
    thread: Discussion,
    uid: str,
    text: str,
) -> DiscussionEvent:
    """A new version of one's own comment; the earlier ones stay in its history."""
    require_participant(session, principal, repo)
    assert principal.user is not None
    event = _comment_event(session, thread, uid)
    if event.author_id != principal.user.id:
        raise Forbidden("Only the author of a comment may edit it")
    if event.hidden:
        raise BadRequest("A hidden comment cannot be edited")
    history = list(event.data.get("history", []))
    if len(history) >= MAX_EDITS:
        raise BadRequest(f"A comment keeps at most {MAX_EDITS} versions")
    history.append(_version(repo, principal.user, _check_comment(text)))
    event.data = {**event.data, "history": history}
    thread.updated_at = utcnow()
    return event


def hide_comment(
    session: Session, principal: Principal, repo: Repo, thread: Discussion, uid: str
) -> DiscussionEvent:
    """Writers hide a comment: its text, every version of it, is erased."""
    require_writer(session, principal, repo, "hide comments")
    event = _comment_event(session, thread, uid)
    event.hidden, event.hidden_by = True, principal.name
    event.data = {"history": []}  # as on the Hub, irreversible: no version is kept
    return event


def rename(
    session: Session, principal: Principal, repo: Repo, thread: Discussion, title: str
) -> DiscussionEvent:
    require_moderator(session, principal, repo, thread, "rename it")
    new = _clean_title(title)
    old, thread.title = thread.title, new
    return _add_event(session, thread, TITLE_CHANGE, principal.user, {"from": old, "to": new})


def change_status(
    session: Session,
    principal: Principal,
    repo: Repo,
    thread: Discussion,
    status: str,
    text: str | None = None,
) -> DiscussionEvent:
    """open (also a draft made ready) or closed, with an optional comment first."""
    if status not in (OPEN, CLOSED):
        raise BadRequest("status must be 'open' or 'closed'")
    require_moderator(session, principal, repo, thread, "close or reopen it")
    if thread.status == MERGED:
        raise BadRequest(f"Pull request #{thread.num} is merged; it cannot be {status} again")
    if thread.status == status:
        raise BadRequest(f"#{thread.num} is already {status}")
    assert principal.user is not None
    if text and text.strip():
        _add_comment(session, repo, thread, principal.user, text)
    thread.status = status
    event = _add_event(session, thread, STATUS_CHANGE, principal.user, {"status": status})
    _notify(session, repo, thread, "discussion", "update", f"status:{event.uid}")
    return event


# --- merge --------------------------------------------------------------------------------


Files = dict[str, FileEntry]


def files_at(session: Session, tree: str) -> Files:
    return {e.path: e for e in list_entries(session, tree, recursive=True) if not e.is_dir}


def changes(before: Files, after: Files) -> dict[str, FileEntry | None]:
    """path -> the file after (None: deleted) for every file that differs."""
    out: dict[str, FileEntry | None] = {}
    for path in before.keys() | after.keys():
        old, new = before.get(path), after.get(path)
        if old is None or new is None or (old.oid, old.mode) != (new.oid, new.mode):
            out[path] = new
    return out


def _same(a: FileEntry | None, b: FileEntry | None) -> bool:
    if a is None or b is None:
        return a is b
    return (a.oid, a.mode) == (b.oid, b.mode)


@dataclass(frozen=True)
class MergeView:
    """What a pull request changes against its base, and what clashes with its target."""

    changed: dict[str, FileEntry | None]
    conflicts: list[str]
    head: str
    target_head: str | None


def merge_view(session: Session, repo: Repo, thread: Discussion) -> MergeView:
    assert thread.is_pull_request and thread.base_sha is not None
    head_ref = get_ref(session, repo, f"{PULLS}{thread.num}")
    target_ref = get_ref(session, repo, thread.target_branch or "")
    head = head_ref.commit_sha if head_ref else thread.base_sha
    base = files_at(session, get_commit(session, thread.base_sha).tree_sha)
    mine = changes(base, files_at(session, get_commit(session, head).tree_sha))
    if target_ref is None or thread.status == MERGED:
        return MergeView(mine, [], head, target_ref.commit_sha if target_ref else None)
    theirs = changes(base, files_at(session, get_commit(session, target_ref.commit_sha).tree_sha))
    conflicts = sorted(p for p in mine if p in theirs and not _same(mine[p], theirs[p]))
    return MergeView(mine, conflicts, head, target_ref.commit_sha)


def merge(
    factory: sessionmaker[Session],
    blobs: BlobStore,
    principal: Principal,
    repo_id: int,
    num: int,
    actor: Actor,
    text: str | None = None,
) -> str:
    """Merge pull request `num` into its target branch; returns the merge commit."""
    with factory() as session:
        repo = session.get(Repo, repo_id)
        assert repo is not None
        thread = find(session, repo, num)
        require_writer(session, principal, repo, "merge pull requests")
        if not thread.is_pull_request:
            raise BadRequest(f"#{num} is a discussion, not a pull request")
        if thread.status != OPEN:
            hint = "; publish it (status open) first" if thread.status == DRAFT else ""
            raise BadRequest(f"Pull request #{num} is {thread.status}{hint}")
        view = merge_view(session, repo, thread)
        if view.target_head is None:
            raise RevisionNotFound(f"The target branch {thread.target_branch} no longer exists")
        if not view.changed:
            raise BadRequest(f"Pull request #{num} changes no file; there is nothing to merge")
        if view.conflicts:
            raise Conflict(
                f"Pull request #{num} conflicts with {thread.target_branch} in: "
                + ", ".join(view.conflicts[:50])
            )
        operations = _operations(blobs, view.changed)
        title, branch = thread.title, thread.target_branch or ""
        target_head = view.target_head
        assert principal.user is not None
        author = Author.of(principal.user)

    def finish(session: Session, fresh: Repo, ref: str, sha: str, plan: CommitPlan) -> None:
        manage.update_card(session, fresh, ref, sha, plan)
        row = find(session, fresh, num)
        user = session.get(User, principal.user.id) if principal.user else None
        if text and text.strip() and user is not None:
            _add_comment(session, fresh, row, user, text)
        row.status, row.merge_commit = MERGED, sha
        event = _add_event(session, row, STATUS_CHANGE, user, {"status": MERGED})
        _notify(session, fresh, row, "discussion", "update", f"status:{event.uid}")

    result = create_commit(
        factory,
        blobs,
        repo_id,
        branch,
        operations,
        author=author,
        title=f"Merge pull request #{num}: {title}",
        description=f"Merges {PULLS}{num} into {branch.removeprefix(HEADS)}.",
        parent_commit=target_head,  # the branch moved since the check: 412, try again
        after_commit=finish,
        actor=actor,
        cause="merge",
    )
    return result.sha


def _operations(blobs: BlobStore, changed: dict[str, FileEntry | None]) -> list[Operation]:
    ops: list[Operation] = []
    for path, entry in sorted(changed.items()):
        if entry is None:
            ops.append(DeletePath(path))
        else:
            readme = None
            if path == "README.md" and entry.lfs_oid is None:
                readme = bytes(load_object(blobs, entry.oid).as_raw_string())
            ops.append(KeepFile(path, entry, readme))
    return ops


# --- the diff -----------------------------------------------------------------------------


def diff_text(blobs: BlobStore, changed: dict[str, FileEntry | None], before: Files) -> str:
    """The changes as git prints them (`git diff base head`): large files show their LFS
    pointers, as git does; binary or huge files one line each. Bounded in files and bytes."""
    parts: list[str] = []
    size = 0
    for path in sorted(changed)[:MAX_DIFF_FILES]:
        text = _file_diff(blobs, path, before.get(path), changed[path])
        size += len(text)
        if size > MAX_DIFF_BYTES:
            parts.append(f"# diff truncated: more than {MAX_DIFF_BYTES} bytes\n")
            break
        parts.append(text)
    if len(changed) > MAX_DIFF_FILES:
        parts.append(f"# {len(changed) - MAX_DIFF_FILES} more files changed\n")
    return "".join(parts)


def _blob_text(blobs: BlobStore, entry: FileEntry | None) -> str | None:
    if entry is None:
        return ""
    if entry.lfs_pointer_size is None and entry.size > MAX_DIFF_FILE_BYTES:
        return None
    data = bytes(load_object(blobs, entry.oid).as_raw_string())
    if b"\0" in data[:8000]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _file_diff(blobs: BlobStore, path: str, old: FileEntry | None, new: FileEntry | None) -> str:
    head = [f"diff --git a/{path} b/{path}\n"]
    if old is None and new is not None:
        head.append(f"new file mode {new.mode:06o}\n")
    elif new is None and old is not None:
        head.append(f"deleted file mode {old.mode:06o}\n")
    elif old is not None and new is not None and old.mode != new.mode:
        head += [f"old mode {old.mode:06o}\n", f"new mode {new.mode:06o}\n"]
    zero = "0" * 7
    head.append(f"index {old.oid[:7] if old else zero}..{new.oid[:7] if new else zero}\n")
    before, after = _blob_text(blobs, old), _blob_text(blobs, new)
    left = f"a/{path}" if old else "/dev/null"
    right = f"b/{path}" if new else "/dev/null"
    if before is None or after is None:
        return "".join(head) + f"Binary files {left} and {right} differ\n"
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True), left, right
    )
    body = [
        line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines
    ]
    return "".join(head) + "".join(body)


# --- the Hub's JSON -------------------------------------------------------------------------


def user_json(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "name": user.name,
        "fullname": user.fullname or user.name,
        "type": "user",
        "avatarUrl": "",
        "isPro": False,
    }


def _with_author(out: dict[str, Any], user: User | None) -> dict[str, Any]:
    shown = user_json(user)
    if shown is not None:
        out["author"] = shown
    return out


def event_json(event: DiscussionEvent, users: dict[int, User]) -> dict[str, Any]:
    data: dict[str, Any]
    if event.type == COMMENT:
        history = event.data.get("history", [])
        if event.hidden:
            latest: dict[str, Any] = {
                "raw": HIDDEN_TEXT,
                "html": f"<p>{HIDDEN_TEXT}</p>",
                "updatedAt": iso_z(event.created_at),
            }
            shown_history: list[dict[str, Any]] = []
        else:
            last = history[-1]
            latest = {"raw": last["raw"], "html": last["html"], "updatedAt": last["at"]}
            latest["author"] = {"name": last["author"]}
            shown_history = [
                {
                    "raw": v["raw"],
                    "html": v["html"],
                    "updatedAt": v["at"],
                    "author": {"name": v["author"]},
                }
                for v in reversed(history)
            ]
        data = {
            "edited": len(history) > 1,
            "hidden": event.hidden,
            "hiddenBy": event.hidden_by,
            "latest": latest,
            "numEdits": max(len(history) - 1, 0),
            "editors": sorted({v["author"] for v in history}) if not event.hidden else [],
            "history": shown_history,
            "reactions": [],
            "isReport": False,
        }
    elif event.type == STATUS_CHANGE:
        data = {"status": event.data["status"]}
    elif event.type == TITLE_CHANGE:
        data = {"from": event.data["from"], "to": event.data["to"]}
    else:
        data = {"oid": event.data["oid"], "subject": event.data["subject"]}
    out = {
        "id": event.uid,
        "type": event.type,
        "createdAt": iso_z(event.created_at),
        "data": data,
    }
    return _with_author(out, users.get(event.author_id or 0))


def event_answer(session: Session, event: DiscussionEvent) -> dict[str, Any]:
    return event_json(event, users_by_id(session, [event.author_id]))


def summary_json(repo: Repo, listed: Listed) -> dict[str, Any]:
    thread = listed.thread
    out = {
        "num": thread.num,
        "title": thread.title,
        "status": thread.status,
        "createdAt": iso_z(thread.created_at),
        "isPullRequest": thread.is_pull_request,
        "numComments": listed.comments,
        "pinned": False,
        "repo": {"name": repo.repo_id, "type": repo.type},
        "topReactions": [],
    }
    return _with_author(out, listed.author)


def details_json(
    session: Session, blobs: BlobStore, repo: Repo, thread: Discussion, *, with_diff: bool
) -> dict[str, Any]:
    rows = events(session, thread)
    users = users_by_id(session, [thread.author_id, *(e.author_id for e in rows)])
    out: dict[str, Any] = {
        "num": thread.num,
        "title": thread.title,
        "status": thread.status,
        "createdAt": iso_z(thread.created_at),
        "isPullRequest": thread.is_pull_request,
        "pinned": False,
        "locked": False,
        "repo": {"name": repo.repo_id, "type": repo.type},
        "events": [event_json(e, users) for e in rows],
    }
    _with_author(out, users.get(thread.author_id or 0))
    if thread.is_pull_request and thread.base_sha is not None:
        view = merge_view(session, repo, thread)
        changes_out: dict[str, Any] = {"base": thread.target_branch}
        if thread.merge_commit:
            changes_out["mergeCommitId"] = thread.merge_commit
        out["changes"] = changes_out
        out["filesWithConflicts"] = view.conflicts
        if with_diff:
            before = files_at(session, get_commit(session, thread.base_sha).tree_sha)
            out["diff"] = diff_text(blobs, view.changed, before)
    return out


# --- commits pushed to pull requests ---------------------------------------------------------


class PullRequestCommits:
    """The consumer of ref moves that records the commits pushed to a pull request's ref as
    events of its thread (idempotent: a commit is recorded once per thread)."""

    name = "pull-request-commits"

    def __init__(self, factory: sessionmaker[Session]):
        self.factory = factory

    def handle(self, event: RepoEvent) -> None:
        number = pr_number(event.ref)
        if number is None or event.new is None:
            return
        with write_transaction(self.factory) as session:
            repo = session.scalar(select(Repo).where(Repo.uid == event.repo_uid))
            thread = (
                session.scalar(
                    select(Discussion).where(
                        Discussion.repo_id == repo.id, Discussion.num == number
                    )
                )
                if repo is not None
                else None
            )
            if thread is None or not thread.is_pull_request:
                return
            stops = {s for s in (event.old, thread.base_sha) if s}
            pushed = _pushed(session, event.new, stops)
            author = session.scalar(select(User.id).where(User.name == event.actor))
            rows = [
                {
                    "uid": _uid(),
                    "discussion_id": thread.id,
                    "type": COMMIT,
                    "author_id": author,
                    "created_at": event.at,
                    "data": {"oid": commit.sha, "subject": commit.title},
                    "hidden": False,
                    "commit_oid": commit.sha,
                }
                for commit in reversed(pushed)
            ]
            insert_ignore(session, DiscussionEvent, rows, ["discussion_id", "commit_oid"])
            thread.updated_at = utcnow()


def _pushed(session: Session, head: str, stops: set[str]) -> Sequence[Commit]:
    """The commits from head back to (not including) a stop, newest first, first parents."""
    out: list[Commit] = []
    sha: str | None = head
    while sha is not None and sha not in stops and len(out) < MAX_COMMIT_EVENTS:
        commit = session.get(Commit, sha)
        if commit is None:
            break
        out.append(commit)
        sha = commit.parents[0] if commit.parents else None
    return out
