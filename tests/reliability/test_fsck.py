"""`atrium fsck` finds what it must: missing and corrupt git objects, a corrupt or missing LFS
object and an index that disagrees with the trees (so the crash tests' clean verdict means
something). Each damage is undone afterwards: other tests check the same store."""

from __future__ import annotations

import hashlib
import secrets
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from dulwich.objects import Blob
from sqlalchemy import update

from app.auth.permissions import Principal
from app.auth.service import get_user
from app.blobs.base import read_all
from app.blobs.keys import git_object_key
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.repos.commits import AddFile, AddLfsFile, Author, CommitResult, create_commit
from app.repos.fsck import FsckReport, fsck
from app.repos.manage import create_repo
from app.repos.models import LfsObject, RepoLfsObject, TreeEntry
from tests.live import LiveServer, private_server

README = b"# fsck target\n"
WEIGHTS = secrets.token_bytes(70_000)
WEIGHTS_OID = hashlib.sha256(WEIGHTS).hexdigest()


@pytest.fixture(scope="module")
def server(
    backend_name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """A store of its own: each check walks the whole store, which on the shared one holds
    every other area's repos (minutes on Postgres+S3)."""
    endpoint = request.getfixturevalue("s3_endpoint") if backend_name == "postgres" else None
    with private_server(backend_name, tmp_path_factory.mktemp("fsck"), endpoint) as live:
        yield live


def make_target(server: LiveServer) -> CommitResult:
    app = server.app()
    factory, blobs = app.state.sessionmaker, app.state.blobs
    name, _ = server.new_user(f"fsck{secrets.token_hex(4)}")
    with factory() as session:
        principal = Principal(user=get_user(session, name), role="write")
    repo = create_repo(factory, blobs, principal, "model", name, "target")
    blobs.put(f"lfs/{WEIGHTS_OID}", [WEIGHTS], sha256=WEIGHTS_OID, size=len(WEIGHTS))
    with write_transaction(factory) as session:
        insert_ignore(session, LfsObject, [{"oid": WEIGHTS_OID, "size": len(WEIGHTS)}], ["oid"])
        insert_ignore(
            session, RepoLfsObject, [{"repo_id": repo.id, "oid": WEIGHTS_OID}], ["repo_id", "oid"]
        )
    ops = [AddFile("README.md", README), AddLfsFile("w/model.bin", WEIGHTS_OID, len(WEIGHTS))]
    assert principal.user is not None
    return create_commit(
        factory, blobs, repo.id, "main", ops, author=Author.of(principal.user), title="fsck"
    )


def check(server: LiveServer) -> FsckReport:
    app = server.app()
    return fsck(app.state.sessionmaker, app.state.blobs)


@contextmanager
def replaced(server: LiveServer, key: str, data: bytes | None) -> Iterator[None]:
    """The object under key replaced by data (deleted when None), restored afterwards."""
    blobs = server.app().state.blobs
    original = read_all(blobs, key)
    if data is None:
        blobs.delete(key)
    else:
        blobs.put(key, [data])
    try:
        yield
    finally:
        blobs.put(key, [original])


def test_fsck_reports_missing_and_corrupt_objects(server: LiveServer) -> None:
    target = make_target(server)
    assert check(server).ok
    readme_key = git_object_key(Blob.from_string(README).id.decode())
    with replaced(server, git_object_key(target.tree_sha), None):
        assert any(f"missing git object {target.tree_sha}" in p for p in check(server).problems)
    forged = zlib.compress(b"blob 14\x00# fsck targeT\n")
    with replaced(server, readme_key, forged):
        assert any("corrupt git object" in p for p in check(server).problems)
    with replaced(server, f"lfs/{WEIGHTS_OID}", WEIGHTS[:-1] + b"\x00"):
        assert any(f"corrupt LFS object {WEIGHTS_OID}" in p for p in check(server).problems)
    with replaced(server, f"lfs/{WEIGHTS_OID}", None):
        assert any(f"missing LFS object {WEIGHTS_OID}" in p for p in check(server).problems)
    assert check(server).ok


def test_fsck_reports_an_index_that_disagrees_with_the_tree(server: LiveServer) -> None:
    target = make_target(server)
    factory = server.app().state.sessionmaker
    where = (TreeEntry.tree_sha == target.tree_sha, TreeEntry.name == "README.md")
    with write_transaction(factory) as session:
        session.execute(update(TreeEntry).where(*where).values(mode=0o100755))
    try:
        assert any("index entry 'README.md' disagrees" in p for p in check(server).problems)
    finally:
        with write_transaction(factory) as session:
            session.execute(update(TreeEntry).where(*where).values(mode=0o100644))
    assert check(server).ok


def test_fsck_command_exits_nonzero_on_damage(server: LiveServer) -> None:
    target = make_target(server)
    with replaced(server, git_object_key(target.sha), None):
        result = server.cli("fsck")
    assert result.returncode == 1
    assert f"missing git object {target.sha}" in result.stdout
    result = server.cli("fsck")
    assert result.returncode == 0, result.stdout
