"""One way to read content (`app.repos.content`), the same for every storage kind.

Each kind is seeded the way users make it — a regular file through the default client, a
large file through LFS (`HF_HUB_DISABLE_XET=1`) and through Xet (the client's default) — and
one conformance class checks, on each backend: the kind is recognised, any byte range reads
back exactly, the HTTP readers (resolve, the git-lfs download) serve the same bytes, and a lost
blob is a clear error that names no storage key.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

import httpx
import pytest
from huggingface_hub import HfApi, constants

from app.blobs.base import read_all
from app.repos import content
from app.repos.models import Repo
from app.repos.service import find_entry, get_commit, resolve_revision
from tests.hub.readkit import big_bytes
from tests.live import LiveServer

SIZE = 300_000 + 17  # several store chunks and Xet chunks, not a round number


@dataclass(frozen=True)
class Kind:
    name: str  # git | lfs | xet
    path: str
    xet: bool  # upload with Xet on (the client's default)


KINDS = [
    Kind("git", "notes/readme.txt", xet=True),
    Kind("lfs", "weights/model.safetensors", xet=False),
    Kind("xet", "weights/model.safetensors", xet=True),
]


@dataclass
class Seeded:
    server: LiveServer
    token: str
    repo_id: str
    path: str
    data: bytes
    located: content.Content


@pytest.fixture(params=KINDS, ids=[k.name for k in KINDS])
def seeded(
    request: pytest.FixtureRequest, server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> Seeded:
    kind: Kind = request.param
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "0" if kind.xet else "1")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", not kind.xet)
    name, token = server.new_user()
    repo_id = f"{name}/c{secrets.token_hex(3)}"
    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(repo_id)
    size = 2_000 if kind.name == "git" else SIZE
    data = big_bytes(size, seed=int.from_bytes(os.urandom(4), "big"))
    if kind.name == "git":
        data = data.hex().encode()[:size]  # text, so the client commits it as a regular file
    api.upload_file(path_or_fileobj=data, path_in_repo=kind.path, repo_id=repo_id)
    app = server.app()
    with app.state.sessionmaker() as session:
        repo = session.query(Repo).filter_by(namespace=name, name=repo_id.split("/")[1]).one()
        tree = get_commit(session, resolve_revision(session, repo, "main")).tree_sha
        entry = find_entry(session, tree, kind.path)
        assert entry is not None
        located = content.locate(app.state.blobs, entry, session)
    assert located.kind == kind.name, f"seeded as {kind.name}, stored as {located.kind}"
    return Seeded(server, token, repo_id, kind.path, data, located)


def read(seeded: Seeded, start: int = 0, length: int | None = None) -> bytes:
    blobs = seeded.server.app().state.blobs
    return b"".join(content.open_content(blobs, seeded.located, start, length))


class TestContentConformance:
    def test_whole_content_reads_back(self, seeded: Seeded) -> None:
        assert read(seeded) == seeded.data
        assert seeded.located.size == len(seeded.data)

    @pytest.mark.parametrize(
        ("start", "length"),
        [(0, 1), (1, 1000), (65_535, 70_000), (-1, None), (-1000, 1000), (0, 0)],
    )
    def test_byte_ranges_read_back_exactly(
        self, seeded: Seeded, start: int, length: int | None
    ) -> None:
        size = len(seeded.data)
        begin = start % size if start < 0 else start
        end = size if length is None else min(begin + length, size)
        assert read(seeded, begin, length) == seeded.data[begin:end]

    def test_range_past_the_end_is_empty(self, seeded: Seeded) -> None:
        assert read(seeded, len(seeded.data) - 5, 100) == seeded.data[-5:]

    def test_resolve_serves_the_same_bytes_and_ranges(self, seeded: Seeded) -> None:
        url = f"{seeded.server.url}/{seeded.repo_id}/resolve/main/{seeded.path}"
        auth = {"Authorization": f"Bearer {seeded.token}"}
        whole = httpx.get(url, headers=auth, follow_redirects=True)
        assert whole.status_code == 200 and whole.content == seeded.data
        part = httpx.get(url, headers={**auth, "Range": "bytes=100-1099"}, follow_redirects=True)
        assert part.status_code == 206 and part.content == seeded.data[100:1100]

    def test_git_lfs_download_serves_large_files_of_either_kind(self, seeded: Seeded) -> None:
        if seeded.located.sha256 is None:
            pytest.skip("a regular file has no LFS object")
        base = f"{seeded.server.url}/{seeded.repo_id}.git/info/lfs"
        auth = httpx.BasicAuth("user", seeded.token)
        batch = httpx.post(
            f"{base}/objects/batch",
            auth=auth,
            headers={"Accept": "application/vnd.git-lfs+json"},
            json={
                "operation": "download",
                "objects": [{"oid": seeded.located.sha256, "size": len(seeded.data)}],
            },
        )
        assert batch.status_code == 200, batch.text
        action = batch.json()["objects"][0]["actions"]["download"]
        got = httpx.get(action["href"], headers=action.get("header", {}), follow_redirects=True)
        assert got.status_code == 200 and got.content == seeded.data

    def test_lost_content_is_a_clear_error_naming_no_key(self, seeded: Seeded) -> None:
        blobs = seeded.server.app().state.blobs
        assert content.is_stored(blobs, seeded.located)
        key = stored_key(seeded.located)
        original = read_all(blobs, key)  # content-addressed: other repos may share it
        blobs.delete(key)
        try:
            assert not content.is_stored(blobs, seeded.located)
            with pytest.raises(content.ContentMissing) as raised:
                read(seeded)
        finally:
            blobs.put(key, [original])
        message = raised.value.message
        assert "missing" in message
        assert not any(part in message for part in ("lfs/", "git/", "xet/", seeded.located.id))


def stored_key(located: content.Content) -> str:
    """The store key holding this content: the git object, the LFS object or the Xet recipe."""
    from app.blobs.keys import git_object_key, lfs_key, recipe_key

    return {"git": git_object_key, "lfs": lfs_key, "xet": recipe_key}[located.kind](located.id)
