"""The versioned repo model: commits are real git commits, refs move by compare-and-swap."""

from __future__ import annotations

import hashlib
import threading

import pytest
from dulwich.objects import Blob

from app.auth.permissions import Principal
from app.auth.service import get_user
from app.blobs.base import put_bytes
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.errors import BadRequest, EntryNotFound, PreconditionFailed
from app.repos.commits import AddFile, AddLfsFile, Author, DeletePath, create_commit
from app.repos.gitobjects import load_object
from app.repos.manage import create_repo, update_card
from app.repos.models import LfsObject, Repo, RepoLfsObject
from app.repos.service import find_entry, get_commit, list_entries, resolve_revision
from tests.live import LiveServer


@pytest.fixture
def ctx(server: LiveServer) -> tuple[object, object, Principal, Repo]:
    app = server.app()
    name, _ = server.new_user()
    factory, blobs = app.state.sessionmaker, app.state.blobs
    with factory() as session:
        user = get_user(session, name)
    principal = Principal(user=user, role="write")
    repo = create_repo(factory, blobs, principal, "model", name, "m")
    return factory, blobs, principal, repo


def _commit(ctx, ops, **kw):  # type: ignore[no-untyped-def]
    factory, blobs, principal, repo = ctx
    return create_commit(
        factory,
        blobs,
        repo.id,
        "main",
        ops,
        author=Author.of(principal.user),
        title="t",
        after_commit=update_card,
        **kw,
    )


def test_commit_builds_real_git_objects_and_index(ctx) -> None:  # type: ignore[no-untyped-def]
    factory, blobs, _, repo = ctx
    readme = b"---\nlicense: mit\npipeline_tag: fill-mask\nlibrary_name: transformers\n---\n# Hi\n"
    result = _commit(ctx, [AddFile("README.md", readme), AddFile("a/b/c.txt", b"hello")])
    commit = load_object(blobs, result.sha)
    assert commit.tree.decode() == result.tree_sha
    with factory() as session:
        assert resolve_revision(session, session.get(Repo, repo.id), "main") == result.sha
        entry = find_entry(session, result.tree_sha, "a/b/c.txt")
        assert entry is not None and entry.oid == Blob.from_string(b"hello").id.decode()
        paths = sorted(e.path for e in list_entries(session, result.tree_sha, recursive=True))
        assert paths == [".gitattributes", "README.md", "a", "a/b", "a/b/c.txt"]
        fresh = session.get(Repo, repo.id)
        assert fresh.pipeline_tag == "fill-mask" and "license:mit" in fresh.tags
        assert get_commit(session, result.sha).parents == [result.parent]


def test_delete_and_bad_paths(ctx) -> None:  # type: ignore[no-untyped-def]
    factory, _, _, _ = ctx
    first = _commit(ctx, [AddFile("x/y.txt", b"1"), AddFile("z.txt", b"2")])
    second = _commit(ctx, [DeletePath("x/", folder=True)])
    with factory() as session:
        paths = sorted(e.path for e in list_entries(session, second.tree_sha, recursive=True))
        assert paths == [".gitattributes", "z.txt"]
    with pytest.raises(EntryNotFound):
        _commit(ctx, [DeletePath("nope.txt")])
    for bad in ["../x", "/abs", "a/../b", ".git/config", "a\x00b", "a\\b", ""]:
        with pytest.raises(BadRequest):
            _commit(ctx, [AddFile(bad, b"x")])
    with pytest.raises(PreconditionFailed):
        _commit(ctx, [AddFile("q.txt", b"q")], parent_commit=first.sha)


def test_lfs_pointer_needs_an_uploaded_object(ctx) -> None:  # type: ignore[no-untyped-def]
    factory, blobs, _, repo = ctx
    data = b"large" * 1000
    oid = hashlib.sha256(data).hexdigest()
    with pytest.raises(BadRequest, match="never uploaded"):
        _commit(ctx, [AddLfsFile("w.bin", oid, len(data))])
    put_bytes(blobs, f"lfs/{oid}", data)
    with write_transaction(factory) as session:
        insert_ignore(session, LfsObject, [{"oid": oid, "size": len(data)}], ["oid"])
        session.add(RepoLfsObject(repo_id=repo.id, oid=oid))
    with pytest.raises(BadRequest, match="size"):
        _commit(ctx, [AddLfsFile("w.bin", oid, 3)])
    result = _commit(ctx, [AddLfsFile("w.bin", oid, len(data))])
    with factory() as session:
        entry = find_entry(session, result.tree_sha, "w.bin")
        assert entry is not None and entry.lfs_oid == oid and entry.size == len(data)


def test_concurrent_commits_are_all_applied(ctx) -> None:  # type: ignore[no-untyped-def]
    factory, _, _, repo = ctx
    errors: list[Exception] = []

    def worker(i: int) -> None:
        try:
            _commit(ctx, [AddFile(f"f{i}.txt", str(i).encode())])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    with factory() as session:
        head = resolve_revision(session, session.get(Repo, repo.id), "main")
        tree = get_commit(session, head).tree_sha
        names = {e.path for e in list_entries(session, tree)}
    assert {f"f{i}.txt" for i in range(8)} <= names
