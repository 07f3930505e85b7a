"""Upload integrity and proof of possession (issue 10 §6). A user who knows only the sha256 of
a file in somebody else's private repo cannot get it linked into their own repo: the LFS
batch asks them for the bytes, a commit naming the oid (as an LFS op or as a pointer file)
is refused, and bytes that do not hash to the oid are refused. A client lying about size or
hash gets an error and nothing it sent becomes visible."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.live import LiveServer
from tests.reliability.figures import REFUSED, record

LFS_JSON = {
    "Accept": "application/vnd.git-lfs+json",
    "Content-Type": "application/vnd.git-lfs+json",
}


@dataclass
class Party:
    name: str
    client: httpx.Client

    def repo(self, name: str) -> str:
        return f"{self.name}/{name}"


@pytest.fixture
def parties(server: LiveServer) -> Iterator[tuple[Party, Party]]:
    made = []
    for _ in range(2):
        name, token = server.new_user()
        client = httpx.Client(
            base_url=server.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        )
        made.append(Party(name, client))
    yield made[0], made[1]
    for party in made:
        party.client.close()


def create(party: Party, name: str, *, private: bool) -> str:
    answer = party.client.post(
        "/api/repos/create", json={"name": name, "type": "model", "private": private}
    )
    assert answer.status_code == 200, answer.text
    return party.repo(name)


def batch(party: Party, repo_id: str, oid: str, size: int) -> dict[str, Any]:
    body = {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]}
    answer = party.client.post(
        f"/{repo_id}.git/info/lfs/objects/batch", json=body, headers=LFS_JSON
    )
    assert answer.status_code == 200, answer.text
    obj: dict[str, Any] = answer.json()["objects"][0]
    return obj


def upload(
    party: Party, repo_id: str, data: bytes, *, oid: str | None = None, size: int | None = None
) -> httpx.Response:
    """Batch then PUT then verify, declaring oid/size (the truth unless given)."""
    oid = oid or hashlib.sha256(data).hexdigest()
    size = len(data) if size is None else size
    obj = batch(party, repo_id, oid, size)
    assert "actions" in obj, f"the server did not ask for the bytes: {obj}"
    put = obj["actions"]["upload"]
    answer = party.client.put(put["href"], content=data, headers=put.get("header", {}))
    if answer.status_code >= 300:
        return answer
    verify = obj["actions"]["verify"]
    return party.client.post(
        verify["href"],
        json={"oid": oid, "size": size},
        headers={**LFS_JSON, **verify.get("header", {})},
    )


def commit(party: Party, repo_id: str, *ops: dict[str, Any]) -> httpx.Response:
    lines = [{"key": "header", "value": {"summary": "possession"}}, *ops]
    body = "\n".join(json.dumps(line) for line in lines)
    return party.client.post(
        f"/api/models/{repo_id}/commit/main",
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )


def lfs_op(path: str, oid: str, size: int) -> dict[str, Any]:
    return {"key": "lfsFile", "value": {"path": path, "algo": "sha256", "oid": oid, "size": size}}


def pointer_op(path: str, oid: str, size: int) -> dict[str, Any]:
    text = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
    content = base64.b64encode(text.encode()).decode()
    return {"key": "file", "value": {"path": path, "content": content, "encoding": "base64"}}


def head(party: Party, repo_id: str) -> str:
    sha: str = party.client.get(f"/api/models/{repo_id}").json()["sha"]
    return sha


def test_knowing_a_private_hash_is_not_enough_to_link_the_content(
    parties: tuple[Party, Party],
) -> None:
    victim, attacker = parties
    secret = secrets.token_bytes(50_000)
    oid, size = hashlib.sha256(secret).hexdigest(), len(secret)
    private = create(victim, "vault", private=True)
    assert upload(victim, private, secret).status_code == 200
    assert commit(victim, private, lfs_op("secret.bin", oid, size)).status_code == 200
    mine = create(attacker, "loot", private=False)
    before = head(attacker, mine)

    obj = batch(attacker, mine, oid, size)
    assert "actions" in obj and "upload" in obj["actions"], "dedup answered for a private file"
    for op in (
        lfs_op("loot.bin", oid, size),
        lfs_op("loot.bin", oid, size + 1),
        pointer_op("loot.bin", oid, size),
    ):
        answer = commit(attacker, mine, op)
        assert answer.status_code == 400, answer.text
        record(REFUSED)
    forged = upload(attacker, mine, secrets.token_bytes(size), oid=oid)
    assert forged.status_code in (400, 422), forged.text
    record(REFUSED)
    assert commit(attacker, mine, lfs_op("loot.bin", oid, size)).status_code == 400
    assert head(attacker, mine) == before
    # Whoever really has the bytes may link them, and gets exactly them.
    assert upload(attacker, mine, secret).status_code == 200
    assert commit(attacker, mine, lfs_op("mine.bin", oid, size)).status_code == 200
    got = attacker.client.get(f"/{mine}/resolve/main/mine.bin")
    assert got.status_code == 200 and got.content == secret


@pytest.mark.parametrize(
    "lie",
    ["short body", "long body", "wrong bytes", "size in batch too small", "negative size"],
)
def test_a_lying_uploader_is_refused_and_nothing_becomes_visible(
    parties: tuple[Party, Party], server: LiveServer, lie: str
) -> None:
    owner, _ = parties
    repo_id = create(owner, f"liar-{secrets.token_hex(3)}", private=False)
    data = secrets.token_bytes(40_000)
    oid, size = hashlib.sha256(data).hexdigest(), len(data)
    if lie == "negative size":
        body = {"operation": "upload", "objects": [{"oid": oid, "size": -1}]}
        answer = owner.client.post(
            f"/{repo_id}.git/info/lfs/objects/batch", json=body, headers=LFS_JSON
        )
        assert answer.status_code == 422 or answer.json()["objects"][0].get("error"), answer.text
    else:
        sent = {
            "short body": data[:-1],
            "long body": data + b"!",
            "wrong bytes": secrets.token_bytes(size),
            "size in batch too small": data,
        }[lie]
        declared = size - 1 if lie == "size in batch too small" else size
        answer = upload(owner, repo_id, sent, oid=oid, size=declared)
        assert 400 <= answer.status_code < 500, (lie, answer.status_code, answer.text)
    record(REFUSED)
    assert server.app().state.blobs.size(f"lfs/{oid}") is None, "a refused upload was stored"
    assert commit(owner, repo_id, lfs_op("x.bin", oid, size)).status_code == 400
