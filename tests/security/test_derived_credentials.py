"""Derived credentials (Xet tokens, signed LFS upload URLs) die with what they came from.

They name their repo by an identifier that never recurs — on SQLite a deleted repo's database
id is given to the next repo, which these tests make happen on purpose — and each use checks
the grant again: a revoked hub token, a deleted repo or a repo turned private stops them on
the very next call.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

import httpx
import pytest
from huggingface_hub import HfApi, constants
from sqlalchemy import select

from app.auth.models import Token
from app.auth.service import hash_token
from app.db.base import utcnow
from app.db.engine import write_transaction
from app.repos.models import Repo
from tests.live import LiveServer
from tests.reliability.slowkit import signed_put


@dataclass
class Xet:
    cas: str
    token: str
    file_hash: str

    def reconstruction(self) -> httpx.Response:
        return httpx.get(
            f"{self.cas}/v1/reconstructions/{self.file_hash}",
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def dedup(self) -> httpx.Response:
        return httpx.get(
            f"{self.cas}/v1/chunks/default-merkledb/{'0' * 64}",
            headers={"Authorization": f"Bearer {self.token}"},
        )


def xet_read(server: LiveServer, repo_id: str, token: str | None, path: str) -> Xet:
    """A Xet read token for repo_id as hf_xet gets it, and the hash of one of its files."""
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    head = httpx.head(f"{server.url}/{repo_id}/resolve/main/{path}", headers=auth)
    assert head.status_code == 200, head.text
    answer = httpx.get(f"{server.url}/api/models/{repo_id}/xet-read-token/main", headers=auth)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return Xet(body["casUrl"], body["accessToken"], head.headers["X-Xet-Hash"])


def xet_write(server: LiveServer, repo_id: str, token: str) -> Xet:
    auth = {"Authorization": f"Bearer {token}"}
    answer = httpx.get(f"{server.url}/api/models/{repo_id}/xet-write-token/main", headers=auth)
    assert answer.status_code == 200, answer.text
    return Xet(answer.json()["casUrl"], answer.json()["accessToken"], "")


def uploaded(server: LiveServer, monkeypatch: pytest.MonkeyPatch, *, private: bool = False):  # type: ignore[no-untyped-def]
    """A fresh owner and a repo holding one file uploaded through Xet (the default)."""
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    name, token = server.new_user()
    repo_id = f"{name}/d{secrets.token_hex(3)}"
    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo_id, private=private)
    api.upload_file(path_or_fileobj=os.urandom(70_000), path_in_repo="w.bin", repo_id=repo_id)
    return name, token, repo_id, api


def repo_row_id(server: LiveServer, repo_id: str) -> int:
    namespace, name = repo_id.split("/")
    with server.app().state.sessionmaker() as session:
        found = session.scalar(
            select(Repo.id).where(Repo.namespace == namespace, Repo.name == name)
        )
        assert found is not None
        return found


def test_a_deleted_repos_credentials_are_refused_on_the_repo_that_gets_its_id(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token, repo_id, api = uploaded(server, monkeypatch)
    read = xet_read(server, repo_id, token, "w.bin")
    write = xet_write(server, repo_id, token)
    put = signed_put(server, repo_id, token, b"late upload")
    assert read.reconstruction().status_code == 200
    old_id = repo_row_id(server, repo_id)
    api.delete_repo(repo_id)
    # The next repo, another owner's: on SQLite it gets the deleted repo's id.
    _, other_token, other_repo, _ = uploaded(server, monkeypatch)
    if server.backend.name == "sqlite":
        assert repo_row_id(server, other_repo) == old_id, "the test needs the id to recur"
    assert read.reconstruction().status_code == 401
    assert write.dedup().status_code == 401
    shard = httpx.post(
        f"{write.cas}/v1/shards", content=b"x", headers={"Authorization": f"Bearer {write.token}"}
    )
    assert shard.status_code == 401
    assert httpx.put(put, content=b"late upload").status_code == 401
    # Nothing reached the repo that now has the id: it holds no such LFS object.
    oid = hashlib.sha256(b"late upload").hexdigest()
    answer = httpx.post(
        f"{server.url}/{other_repo}.git/info/lfs/objects/batch",
        headers={"Authorization": f"Bearer {other_token}"},
        json={"operation": "download", "objects": [{"oid": oid, "size": 11}]},
    )
    assert answer.json()["objects"][0]["error"]["code"] == 404


def test_a_revoked_hub_token_stops_its_xet_token_and_signed_urls_at_once(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token, repo_id, _ = uploaded(server, monkeypatch, private=True)
    read = xet_read(server, repo_id, token, "w.bin")
    write = xet_write(server, repo_id, token)
    put = signed_put(server, repo_id, token, b"after revocation")
    assert read.reconstruction().status_code == 200
    with write_transaction(server.app().state.sessionmaker) as session:
        row = session.scalar(select(Token).where(Token.digest == hash_token(token)))
        assert row is not None
        row.revoked_at = utcnow()
    assert read.reconstruction().status_code == 401
    assert write.dedup().status_code == 401
    assert httpx.put(put, content=b"after revocation").status_code == 401


def test_a_repo_turned_private_stops_the_read_tokens_of_those_who_may_no_longer_read(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, _, repo_id, api = uploaded(server, monkeypatch)
    _, stranger = server.new_user()
    theirs = xet_read(server, repo_id, stranger, "w.bin")
    anonymous = xet_read(server, repo_id, None, "w.bin")
    assert theirs.reconstruction().status_code == 200
    assert anonymous.reconstruction().status_code == 200
    api.update_repo_settings(repo_id, private=True)
    for token in (theirs, anonymous):
        refused = token.reconstruction()
        assert refused.status_code == 404
        assert refused.headers["X-Error-Code"] == "RepoNotFound"


def test_a_read_token_may_not_probe_the_global_dedup_index(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, token, repo_id, _ = uploaded(server, monkeypatch)
    assert xet_read(server, repo_id, token, "w.bin").dedup().status_code == 403
    assert xet_write(server, repo_id, token).dedup().status_code == 404  # no such chunk
