"""One place where refs move: every write path records exactly one `repo.ref_moved` event per
ref it moves, in the transaction that moves it, and the follow-up work runs from those events.

Each write path is driven the way users drive it (huggingface_hub, git, the dataset viewer);
the events are then read from the durable table.
"""

from __future__ import annotations

import pickle
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import delete, select, update

from app.audit.models import AuditEvent
from app.repos.models import EventCursor, Ref, Repo, RepoEvent
from app.security.models import PickleScan
from app.security.service import PickleScans, content_key
from tests.git.gitkit import Git, repo_url
from tests.hub.readkit import Owner, new_owner
from tests.live import LiveServer


@pytest.fixture
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


def new_repo(owner: Owner, repo_type: str = "model") -> str:
    repo_id = f"{owner.name}/e{secrets.token_hex(3)}"
    owner.api.create_repo(repo_id, repo_type=repo_type)
    return repo_id


def events(server: LiveServer, repo_id: str) -> list[RepoEvent]:
    with server.app().state.sessionmaker() as session:
        query = select(RepoEvent).where(RepoEvent.repo == repo_id).order_by(RepoEvent.id)
        return list(session.scalars(query))


def head(server: LiveServer, repo_id: str, ref: str = "refs/heads/main") -> str | None:
    namespace, name = repo_id.split("/")
    with server.app().state.sessionmaker() as session:
        return session.scalar(
            select(Ref.commit_sha)
            .join(Repo, Repo.id == Ref.repo_id)
            .where(Repo.namespace == namespace, Repo.name == name, Ref.name == ref)
        )


def moved_by(owner: Owner, repo_id: str, action: Callable[[], object]) -> list[RepoEvent]:
    before = len(events(owner.server, repo_id))
    action()
    return events(owner.server, repo_id)[before:]


def test_repo_creation_records_its_first_ref(owner: Owner) -> None:
    repo_id = new_repo(owner)
    (event,) = events(owner.server, repo_id)
    assert (event.kind, event.cause, event.ref) == (
        "repo.ref_moved",
        "repo.create",
        "refs/heads/main",
    )
    assert event.old is None and event.new == head(owner.server, repo_id)
    assert event.actor == owner.name


def test_an_api_commit_records_one_event_with_old_and_new(owner: Owner) -> None:
    repo_id = new_repo(owner)
    old = head(owner.server, repo_id)
    upload = lambda: owner.api.upload_file(  # noqa: E731
        path_or_fileobj=b"hello", path_in_repo="a.txt", repo_id=repo_id
    )
    (event,) = moved_by(owner, repo_id, upload)
    assert (event.cause, event.ref, event.old) == ("commit", "refs/heads/main", old)
    assert event.new == head(owner.server, repo_id) != old
    assert event.actor == owner.name


def test_a_commit_opened_as_a_pull_request_records_the_pr_ref_then_the_commit(
    owner: Owner,
) -> None:
    repo_id = new_repo(owner)
    upload = lambda: owner.api.upload_file(  # noqa: E731
        path_or_fileobj=b"fix", path_in_repo="fix.md", repo_id=repo_id, create_pr=True
    )
    opened, committed = moved_by(owner, repo_id, upload)
    assert (opened.cause, opened.ref, opened.old) == ("pull-request", "refs/pr/1", None)
    assert (committed.cause, committed.ref, committed.old) == ("commit", "refs/pr/1", opened.new)


@pytest.mark.parametrize(("kind", "ref"), [("branch", "refs/heads/dev"), ("tag", "refs/tags/v1")])
def test_branch_and_tag_create_and_delete_record_one_event_each(
    owner: Owner, kind: str, ref: str
) -> None:
    repo_id = new_repo(owner)
    main = head(owner.server, repo_id)
    api = owner.api
    create = (
        (lambda: api.create_branch(repo_id, branch="dev"))
        if kind == "branch"
        else (lambda: api.create_tag(repo_id, tag="v1"))
    )
    remove = (
        (lambda: api.delete_branch(repo_id, branch="dev"))
        if kind == "branch"
        else (lambda: api.delete_tag(repo_id, tag="v1"))
    )
    (created,) = moved_by(owner, repo_id, create)
    assert (created.cause, created.ref, created.old, created.new) == (kind, ref, None, main)
    (deleted,) = moved_by(owner, repo_id, remove)
    assert (deleted.cause, deleted.ref, deleted.old, deleted.new) == (kind, ref, main, None)


def test_super_squash_records_one_event(owner: Owner) -> None:
    repo_id = new_repo(owner)
    owner.api.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=repo_id)
    old = head(owner.server, repo_id)
    (event,) = moved_by(owner, repo_id, lambda: owner.api.super_squash_history(repo_id))
    assert (event.cause, event.old, event.new) == ("squash", old, head(owner.server, repo_id))


def test_a_git_push_records_one_event_per_ref(owner: Owner, tmp_path: Path) -> None:
    repo_id = new_repo(owner)
    git = Git(tmp_path / "home")
    work = git.clone(repo_url(owner.server, repo_id, owner.token), tmp_path / "work")
    old = head(owner.server, repo_id)
    new = git.commit_files(work, {"pushed.txt": "by git"}, "a push")

    def push() -> None:
        git.run("push", "-q", "origin", "HEAD:main", "HEAD:refs/heads/side", cwd=work)

    moved = moved_by(owner, repo_id, push)
    assert sorted((e.ref, e.old, e.new, e.cause) for e in moved) == [
        ("refs/heads/main", old, new, "push"),
        ("refs/heads/side", None, new, "push"),
    ]
    assert all(e.actor == owner.name for e in moved)


def test_deleting_a_repo_records_one_event_per_ref(owner: Owner) -> None:
    repo_id = new_repo(owner)
    owner.api.create_tag(repo_id, tag="v1")
    (deleted_main, deleted_tag) = sorted(
        moved_by(owner, repo_id, lambda: owner.api.delete_repo(repo_id)), key=lambda e: e.ref
    )
    assert (deleted_main.ref, deleted_main.new, deleted_main.cause) == (
        "refs/heads/main",
        None,
        "repo.delete",
    )
    assert (deleted_tag.ref, deleted_tag.new) == ("refs/tags/v1", None)


def test_the_parquet_export_records_one_event(owner: Owner) -> None:
    repo_id = new_repo(owner, "dataset")
    owner.api.upload_file(
        path_or_fileobj=b"a,b\n1,2\n3,4\n", path_in_repo="data.csv", repo_id=repo_id,
        repo_type="dataset",
    )  # fmt: skip
    auth = {"Authorization": f"Bearer {owner.token}"}
    viewer = f"{owner.server.url}/api/datasets-server/splits"
    assert httpx.get(viewer, params={"dataset": repo_id}, headers=auth).status_code == 200
    deadline = time.monotonic() + 60
    while head(owner.server, repo_id, "refs/convert/parquet") is None:
        assert time.monotonic() < deadline, "the export never landed"
        time.sleep(0.2)
    exported = [e for e in events(owner.server, repo_id) if e.ref == "refs/convert/parquet"]
    assert [(e.cause, e.old, e.actor) for e in exported] == [("export", None, None)]


def test_a_refused_commit_records_nothing(owner: Owner) -> None:
    repo_id = new_repo(owner)
    stale = head(owner.server, repo_id)
    owner.api.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=repo_id)

    def stale_commit() -> None:
        with pytest.raises(Exception, match="412"):
            owner.api.upload_file(
                path_or_fileobj=b"2", path_in_repo="two.txt", repo_id=repo_id, parent_commit=stale
            )

    assert moved_by(owner, repo_id, stale_commit) == []


def test_every_event_with_an_actor_has_its_audit_line(owner: Owner) -> None:
    repo_id = new_repo(owner)
    owner.api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    owner.api.create_branch(repo_id, branch="dev")
    moved = [e for e in events(owner.server, repo_id) if e.cause != "repo.create"]
    with owner.server.app().state.sessionmaker() as session:
        lines = session.scalars(
            select(AuditEvent).where(AuditEvent.action == "repo.push", AuditEvent.target == repo_id)
        ).all()
    assert sorted((a.details["ref"], a.details["new"]) for a in lines) == sorted(
        (e.ref, e.new) for e in moved
    )


class Boom:
    """A pickle whose import the scanner flags (it is never loaded)."""

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("true",))


def test_pickle_scans_run_from_the_events_and_catch_up_after_a_miss(owner: Owner) -> None:
    repo_id = new_repo(owner)
    owner.api.upload_file(
        path_or_fileobj=pickle.dumps(Boom()), path_in_repo="model.pkl", repo_id=repo_id
    )
    info = owner.api.model_info(repo_id, securityStatus=True)
    issues = info.security_repo_status["filesWithIssues"]  # delivered before the answer
    assert [i["path"] for i in issues] == ["model.pkl"]

    # A verdict lost with a delivery that never happened (a crash right after the commit):
    # with the consumer's position rewound, the bus delivers the event again from the table
    # (this process's bus here, or the live server's poller if it comes first).
    app = owner.server.app()
    (event,) = [e for e in events(owner.server, repo_id) if e.cause == "commit"]
    (file,) = owner.api.get_paths_info(repo_id, ["model.pkl"])
    key = content_key(file.lfs.sha256 if file.lfs else None, file.blob_id)
    with app.state.sessionmaker() as session, session.begin():
        assert session.execute(delete(PickleScan).where(PickleScan.oid == key)).rowcount == 1
        session.execute(
            update(EventCursor)
            .where(EventCursor.consumer == PickleScans.name)
            .values(position=event.id - 1)
        )
    app.state.events.deliver()
    deadline = time.monotonic() + 30
    while not (status := owner.api.model_info(repo_id, securityStatus=True).security_repo_status)[
        "scansDone"
    ]:
        assert time.monotonic() < deadline, "the event was never delivered again"
        time.sleep(0.2)
    assert [i["path"] for i in status["filesWithIssues"]] == ["model.pkl"]
