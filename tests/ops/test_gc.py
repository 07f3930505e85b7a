"""`atrium gc`: unreachable objects go, reachable and young ones stay, fsck stays clean."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
from dulwich.objects import Blob, Tag
from dulwich.objects import Commit as GitCommit
from huggingface_hub import hf_hub_download
from sqlalchemy import delete

from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.git.models import GitTag
from app.maintenance import collect_garbage, reachable
from app.repos.gitobjects import store_objects
from app.repos.manage import delete_repo
from app.repos.models import LfsObject, Repo, RepoLfsObject
from tests.hub.readkit import Owner, commit, make_repo, new_owner, no_xet
from tests.live import LiveServer

__all__ = ["no_xet"]  # the autouse fixture: downloads over plain HTTP


def git_key(content: bytes) -> str:
    return f"git/{Blob.from_string(content).id.decode()}"


def lfs_key(content: bytes) -> str:
    return f"lfs/{hashlib.sha256(content).hexdigest()}"


def stored(server: LiveServer, key: str) -> bool:
    return server.app().state.blobs.size(key) is not None


def abandoned_upload(owner: Owner, repo: Repo, data: bytes) -> str:
    """An LFS object uploaded to a repo and never committed (the client gave up)."""
    app = owner.server.app()
    oid = hashlib.sha256(data).hexdigest()
    app.state.blobs.put(f"lfs/{oid}", [data], sha256=oid, size=len(data))
    with write_transaction(app.state.sessionmaker) as session:
        insert_ignore(session, LfsObject, [{"oid": oid, "size": len(data)}], ["oid"])
        insert_ignore(
            session, RepoLfsObject, [{"repo_id": repo.id, "oid": oid}], ["repo_id", "oid"]
        )
    return oid


@pytest.fixture(scope="module")
def garbage(own_server: LiveServer) -> dict[str, list[str]]:
    """A kept repo, a deleted repo and an abandoned upload; the keys each should leave."""
    owner = new_owner(own_server)
    kept_files = {"config.json": b'{"kept": true}', "shared.txt": b"in both repos"}
    kept_lfs = {"model.bin": b"kept weights " * 100}
    kept, _ = make_repo(owner, "kept", kept_files, kept_lfs)
    gone_files = {"only-here.txt": b"only in the deleted repo", "shared.txt": b"in both repos"}
    gone_lfs = {"big.bin": b"deleted weights " * 100}
    gone, gone_commit = make_repo(owner, "gone", gone_files, gone_lfs)
    assert gone_commit is not None
    with write_transaction(own_server.app().state.sessionmaker) as session:
        repo = session.get(Repo, gone.id)
        assert repo is not None
        delete_repo(session, repo, None)
    orphan = abandoned_upload(owner, kept, b"never committed " * 50)
    scratch = ["lfs-parts/abandoned/00001", "lfs-staging/abandoned", "git-cache/0123abcd"]
    for key in scratch:  # an abandoned multipart upload, an old cached clone reply
        own_server.app().state.blobs.put(key, [b"scratch"])
    return {
        "kept": [
            git_key(b'{"kept": true}'),
            git_key(b"in both repos"),
            lfs_key(b"kept weights " * 100),
        ],
        "garbage": [
            git_key(b"only in the deleted repo"),
            f"git/{gone_commit.sha}",
            lfs_key(b"deleted weights " * 100),
            *scratch,
            f"lfs/{orphan}",
        ],
        "owner": [owner.name, owner.token, kept.repo_id],
    }


def test_young_garbage_is_kept_for_the_grace_period(
    own_server: LiveServer, garbage: dict[str, list[str]]
) -> None:
    app = own_server.app()
    report = collect_garbage(app.state.sessionmaker, app.state.blobs, grace_s=3600, settle_s=0)
    assert report.deleted == [] and report.young >= len(garbage["garbage"])
    assert all(stored(own_server, key) for key in garbage["garbage"] + garbage["kept"])


def test_dry_run_lists_garbage_and_deletes_nothing(
    own_server: LiveServer, garbage: dict[str, list[str]]
) -> None:
    result = own_server.cli("gc", "--grace-hours", "0", "--dry-run")
    assert result.returncode == 0, result.stderr
    listed = {line.split()[-1] for line in result.stdout.splitlines() if line.startswith("would")}
    assert set(garbage["garbage"]) <= listed
    assert not listed & set(garbage["kept"])
    assert all(stored(own_server, key) for key in garbage["garbage"])


def test_gc_deletes_only_unreachable_objects_and_fsck_stays_clean(
    own_server: LiveServer, garbage: dict[str, list[str]], hf_home: Path
) -> None:
    result = own_server.cli("gc", "--grace-hours", "0", "--settle-seconds", "0")
    assert result.returncode == 0, result.stderr
    assert not any(stored(own_server, key) for key in garbage["garbage"])
    assert all(stored(own_server, key) for key in garbage["kept"])
    orphan = garbage["garbage"][-1].removeprefix("lfs/")
    with own_server.app().state.sessionmaker() as session:
        assert session.get(LfsObject, orphan) is None  # a new commit cannot point at it

    fsck = own_server.cli("fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    _name, token, repo_id = garbage["owner"]
    path = hf_hub_download(repo_id, "model.bin", endpoint=own_server.url, token=token)
    assert Path(path).read_bytes() == b"kept weights " * 100

    app = own_server.app()
    again = collect_garbage(app.state.sessionmaker, app.state.blobs, grace_s=0, settle_s=0)
    assert again.deleted == []


def test_a_commit_during_the_settle_period_keeps_its_objects(own_server: LiveServer) -> None:
    """The re-mark after settling sees a commit that reached a candidate meanwhile."""
    owner = new_owner(own_server)
    repo, _ = make_repo(owner, "revived", {"a.txt": b"first"})
    content = b"garbage that comes back"
    abandoned_upload(owner, repo, content)
    app = own_server.app()
    factory, blobs = app.state.sessionmaker, app.state.blobs

    def commit_meanwhile() -> None:
        # As a commit that read the object's rows just before gc forgot them: it lands, and
        # its object has no rows left.
        oid = abandoned_upload(owner, repo, content)
        commit(owner, repo, {}, {"back.bin": content})
        with write_transaction(factory) as session:
            session.execute(delete(RepoLfsObject).where(RepoLfsObject.oid == oid))
            session.execute(delete(LfsObject).where(LfsObject.oid == oid))

    timer = threading.Timer(0.5, commit_meanwhile)
    timer.start()
    report = collect_garbage(factory, blobs, grace_s=0, settle_s=3)
    timer.join()
    assert lfs_key(content) in report.candidates
    assert lfs_key(content) not in report.deleted
    assert stored(own_server, lfs_key(content))
    oid = lfs_key(content).removeprefix("lfs/")
    with factory() as session:  # its rows are back: the repo may commit it again
        assert session.get(LfsObject, oid) is not None
        assert session.get(RepoLfsObject, (repo.id, oid)) is not None


def test_an_annotated_tag_pushed_over_git_is_reachable(own_server: LiveServer) -> None:
    """Its ref row holds the commit; the tag object itself is a root of its own."""
    owner = new_owner(own_server)
    repo, first = make_repo(owner, "tagged", {"a.txt": b"tagged content"})
    assert first is not None
    tag = Tag()
    tag.object = (GitCommit, first.sha.encode())
    tag.name, tag.message = b"v1", b"release one\n"
    tag.tagger, tag.tag_time, tag.tag_timezone = b"T <t@example.com>", 0, 0
    app = own_server.app()
    store_objects(app.state.blobs, [tag])
    with write_transaction(app.state.sessionmaker) as session:
        session.add(
            GitTag(
                repo_id=repo.id, name="refs/tags/v1", tag_sha=tag.id.decode(), commit_sha=first.sha
            )
        )
    marks = reachable(app.state.sessionmaker, app.state.blobs)
    assert f"git/{tag.id.decode()}" in marks.keys and f"git/{first.sha}" in marks.keys
