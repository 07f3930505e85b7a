"""Test data for the read API, written in-process through the repo service functions (the
write routes are another engineer's), and shared fixtures of tests/hub/test_read_*.py."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import pytest
from huggingface_hub import HfApi, constants

from app.auth.permissions import Principal
from app.auth.service import get_user
from app.db.engine import write_transaction
from app.db.upsert import insert_ignore
from app.repos.commits import AddFile, AddLfsFile, Author, CommitResult, create_commit
from app.repos.manage import create_repo, update_card
from app.repos.models import LfsObject, Repo, RepoLfsObject
from app.repos.refs import move_ref
from tests.live import LiveServer

README = b"""---
license: mit
library_name: transformers
pipeline_tag: text-generation
tags:
- atrium-test
---
# A test model
"""


@pytest.fixture(autouse=True)
def no_xet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Xet downloads are not served yet: the client must use plain HTTP (hf-protocol.md §7)."""
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    yield


@dataclass
class Owner:
    server: LiveServer
    name: str
    token: str

    @property
    def api(self) -> HfApi:
        return HfApi(endpoint=self.server.url, token=self.token)

    def principal(self) -> Principal:
        with self.server.app().state.sessionmaker() as session:
            return Principal(user=get_user(session, self.name), role="write")


def new_owner(server: LiveServer) -> Owner:
    name, token = server.new_user(f"reader{secrets.token_hex(4)}")
    return Owner(server, name, token)


def make_repo(
    owner: Owner,
    name: str,
    files: Mapping[str, bytes] = {},
    lfs: Mapping[str, bytes] = {},
    *,
    repo_type: str = "model",
    private: bool = False,
    title: str = "add files",
) -> tuple[Repo, CommitResult | None]:
    app = owner.server.app()
    factory, blobs = app.state.sessionmaker, app.state.blobs
    repo = create_repo(
        factory, blobs, owner.principal(), repo_type, owner.name, name, private=private
    )
    result = commit(owner, repo, files, lfs, title=title) if files or lfs else None
    return repo, result


def commit(
    owner: Owner,
    repo: Repo,
    files: Mapping[str, bytes] = {},
    lfs: Mapping[str, bytes] = {},
    *,
    branch: str = "main",
    title: str = "add files",
) -> CommitResult:
    """Commit regular files and LFS files (their objects put in the store first, as the LFS
    upload would)."""
    app = owner.server.app()
    factory, blobs = app.state.sessionmaker, app.state.blobs
    ops: list[AddFile | AddLfsFile] = [AddFile(p, d) for p, d in files.items()]
    for path, data in lfs.items():
        oid = hashlib.sha256(data).hexdigest()
        blobs.put(f"lfs/{oid}", [data], sha256=oid, size=len(data))
        with write_transaction(factory) as session:
            insert_ignore(session, LfsObject, [{"oid": oid, "size": len(data)}], ["oid"])
            insert_ignore(
                session, RepoLfsObject, [{"repo_id": repo.id, "oid": oid}], ["repo_id", "oid"]
            )
        ops.append(AddLfsFile(path, oid, len(data)))
    principal = owner.principal()
    assert principal.user is not None
    return create_commit(
        factory,
        blobs,
        repo.id,
        branch,
        ops,
        author=Author.of(principal.user),
        title=title,
        after_commit=update_card,
    )


def add_ref(owner: Owner, repo: Repo, ref_name: str, sha: str) -> None:
    with write_transaction(owner.server.app().state.sessionmaker) as session:
        fresh = session.get(Repo, repo.id)
        assert fresh is not None
        assert move_ref(session, fresh, ref_name, None, sha, cause="branch")


def big_bytes(size: int, seed: int = 0) -> bytes:
    """Deterministic non-repeating bytes, so a wrong offset is caught."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}-{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])
