"""The CAS at the protocol level: tokens, verification of everything a client sends, privacy.

The real client never lies, so these tests speak the wire format themselves (xetkit) to send
what a malicious client would: a xorb whose bytes do not match its hash, a shard naming chunks
the server does not hold or a wrong verification hash or sha256, and reads across repos.
"""

from __future__ import annotations

import hashlib
import secrets
import time

import httpx
import pytest
from huggingface_hub import HfApi
from sqlalchemy import select

from app.blobs.keys import recipe_key, xorb_key
from app.repos.models import LfsObject
from app.xet import hashing, shard
from app.xet.models import XetFile, XetXorb
from tests.live import LiveServer
from tests.xet.xetkit import CasClient, build_file


def new_repo(server: LiveServer, user: tuple[str, str], private: bool = False) -> str:
    repo = f"{user[0]}/cas-{secrets.token_hex(3)}"
    HfApi(endpoint=server.url, token=user[1]).create_repo(repo, private=private)
    return repo


def xorb_row(server: LiveServer, xorb_hex: str) -> XetXorb | None:
    with server.app().state.sessionmaker() as session:
        return session.get(XetXorb, xorb_hex)


def lfs_row(server: LiveServer, oid: str) -> LfsObject | None:
    with server.app().state.sessionmaker() as session:
        return session.scalar(select(LfsObject).where(LfsObject.oid == oid))


def test_token_endpoints_answer_json_and_headers(server: LiveServer, user: tuple[str, str]) -> None:
    repo = new_repo(server, user)
    auth = {"authorization": f"Bearer {user[1]}"}
    for scope in ("read", "write"):
        answer = httpx.get(f"{server.url}/api/models/{repo}/xet-{scope}-token/main", headers=auth)
        assert answer.status_code == 200
        body = answer.json()
        assert body["casUrl"] == f"{server.url}/xet"
        assert answer.headers["x-xet-access-token"] == body["accessToken"]
        assert answer.headers["x-xet-cas-url"] == body["casUrl"]
        assert int(answer.headers["x-xet-token-expiration"]) == body["exp"]
    pr = httpx.get(f"{server.url}/api/models/{repo}/xet-write-token/None?create_pr=1", headers=auth)
    assert pr.status_code == 200
    missing = httpx.get(f"{server.url}/api/models/{repo}/xet-read-token/nope", headers=auth)
    assert missing.status_code == 404
    anonymous = httpx.get(f"{server.url}/api/models/{repo}/xet-write-token/main")
    assert anonymous.status_code == 401


def test_write_token_needs_write_access(server: LiveServer, user: tuple[str, str]) -> None:
    """A read token gets none; another user's write token gets one, for the objects of a pull
    request (issue 20): only a commit to their own pull request can then use them."""
    repo = new_repo(server, user)
    _, reader = server.new_user(role="read")
    other_name, other = server.new_user()
    for token, status in ((reader, 403), (other, 200)):
        answer = httpx.get(
            f"{server.url}/api/models/{repo}/xet-write-token/main",
            headers={"authorization": f"Bearer {token}"},
        )
        assert answer.status_code == status, other_name


def test_cas_refuses_missing_forged_and_read_only_tokens(
    server: LiveServer, user: tuple[str, str]
) -> None:
    repo = new_repo(server, user)
    built = build_file()
    read = CasClient.connect(server, user[1], repo, scope="read")
    assert read.post_xorb(built).status_code == 403
    forged = CasClient(read.hub, read.cas, read.token[:-2] + "xx")
    assert forged.post_xorb(built).status_code == 401
    assert httpx.post(f"{read.cas}/v1/shards", content=b"").status_code == 401
    assert xorb_row(server, hashing.to_hex(built.xorb_hash)) is None


def test_a_xorb_that_does_not_match_its_hash_stores_nothing(
    server: LiveServer, user: tuple[str, str]
) -> None:
    cas = CasClient.connect(server, user[1], new_repo(server, user))
    built = build_file()
    other = build_file().xorb_body  # well formed, but other content than the hash names
    answer = cas.post_xorb(built, other)
    assert answer.status_code == 400
    assert "hashes to" in answer.json()["error"]
    corrupt = built.xorb_body[:-1] + bytes([built.xorb_body[-1] ^ 0xFF])
    assert cas.post_xorb(built, corrupt).status_code == 400
    xorb_hex = hashing.to_hex(built.xorb_hash)
    assert xorb_row(server, xorb_hex) is None
    assert server.app().state.blobs.size(xorb_key(xorb_hex)) is None
    assert cas.post_xorb(built).json() == {"was_inserted": True}
    assert cas.post_xorb(built).json() == {"was_inserted": False}


def test_shards_that_lie_are_refused_and_register_nothing(
    server: LiveServer, user: tuple[str, str]
) -> None:
    cas = CasClient.connect(server, user[1], new_repo(server, user))
    built = build_file()
    # Chunks the server does not hold: the xorb was never uploaded.
    answer = cas.post_shard(built.shard())
    assert answer.status_code == 400 and "never uploaded" in answer.json()["error"]
    assert cas.post_xorb(built).status_code == 200
    lies = {
        "verification": built.shard(verification=bytes(32)),
        "sha256": built.shard(sha256="0" * 63 + "1"),
    }
    for lie, data in lies.items():
        refused = cas.post_shard(data)
        assert refused.status_code == 400, lie
        assert lie in refused.json()["error"]
    wrong_file = built.entry()
    wrong_file.hash = bytes(31) + b"\x01"
    data = shard.build_upload_shard([wrong_file], {built.xorb_hash: built.refs})
    assert cas.post_shard(data).status_code == 400
    with server.app().state.sessionmaker() as session:
        assert session.get(XetFile, hashing.to_hex(built.file_hash)) is None
    assert lfs_row(server, built.sha256) is None
    # The honest shard is accepted, on both versions of the route.
    assert cas.post_shard(built.shard()).json() == {"result": 1}
    assert (
        cas.post_shard(built.shard(), version=2).text.strip() == '{"type": "result", "result": 0}'
    )
    row = lfs_row(server, built.sha256)
    assert row is not None and row.size == len(built.data)
    assert row.xet_hash == hashing.to_hex(built.file_hash)


def test_reconstruction_ranges_and_signed_fetch_urls(
    server: LiveServer, user: tuple[str, str]
) -> None:
    cas = CasClient.connect(server, user[1], new_repo(server, user))
    built = build_file()
    cas.post_xorb(built)
    cas.post_shard(built.shard())
    size = len(built.data)
    whole = cas.reconstruction(built.file_hash, version=1).json()
    assert sum(t["unpacked_length"] for t in whole["terms"]) == size
    (fetch,) = next(iter(whole["fetch_info"].values()))
    url, (b0, b1) = fetch["url"], (fetch["url_range"]["start"], fetch["url_range"]["end"])
    got = httpx.get(url, headers={"range": f"bytes={b0}-{b1}"})
    assert got.status_code == 206 and got.content == built.xorb_body[b0 : b1 + 1]
    # The URL grants exactly its range, and only unmodified.
    assert httpx.get(url, headers={"range": f"bytes={b0}-{b1 + 1}"}).status_code == 403
    assert httpx.get(url + "x", headers={"range": f"bytes={b0}-{b1}"}).status_code == 403
    # A range inside the third chunk: one chunk, and the offset into it.
    start = 2 * 16384 + 100
    part = cas.reconstruction(built.file_hash, range_=f"bytes={start}-{start + 9}").json()
    assert part["offset_into_first_range"] == 100
    assert part["terms"][0]["range"] == {"start": 2, "end": 3}
    (entry,) = next(iter(part["xorbs"].values()))
    assert entry["ranges"][0]["chunks"] == {"start": 2, "end": 3}
    past_end = cas.reconstruction(built.file_hash, range_=f"bytes={size}-{size + 10}")
    assert past_end.status_code == 416
    clamped = cas.reconstruction(built.file_hash, range_=f"bytes=0-{size * 2}").json()
    assert sum(t["unpacked_length"] for t in clamped["terms"]) == size


def test_no_read_of_another_users_private_file(server: LiveServer, user: tuple[str, str]) -> None:
    """Neither reconstruction nor the dedup query nor a guessed sha256 reaches another
    user's private content."""
    private_repo = new_repo(server, user, private=True)
    owner = CasClient.connect(server, user[1], private_repo)
    built = build_file()
    owner.post_xorb(built)
    owner.post_shard(built.shard())
    assert owner.reconstruction(built.file_hash).status_code == 200

    intruder = server.new_user()
    denied = httpx.get(
        f"{server.url}/api/models/{private_repo}/xet-read-token/main",
        headers={"authorization": f"Bearer {intruder[1]}"},
    )
    assert denied.status_code == 404
    own = CasClient.connect(server, intruder[1], new_repo(server, intruder))
    assert own.reconstruction(built.file_hash).status_code == 404
    # Dedup answers name chunks only by a per-answer keyed hash: no chunk hash, no content.
    first = hashing.to_hex(built.refs[0].hash)
    answer = httpx.get(f"{own.cas}/v1/chunks/default/{first}", headers=own.auth)
    assert answer.status_code == 200
    assert all(r.hash not in answer.content for r in built.refs)
    assert built.data[:64] not in answer.content
    # Registering someone else's sha256 needs every chunk hash (the verification hash).
    forged = build_file(size=1000).entry()
    forged.sha256 = hashing.from_hex(built.sha256)
    forged_shard = shard.build_upload_shard([forged], {})
    assert own.post_shard(forged_shard).status_code == 400
    assert own.reconstruction(built.file_hash).status_code == 404


def test_unknown_optional_routes_answer_404(server: LiveServer, user: tuple[str, str]) -> None:
    cas = CasClient.connect(server, user[1], new_repo(server, user))
    grant = httpx.post(f"{cas.cas}/v1/xorb-grants/default/{'0' * 64}", json={}, headers=cas.auth)
    assert grant.status_code == 404
    missing = httpx.get(f"{cas.cas}/v1/chunks/default/{'ab' * 32}", headers=cas.auth)
    assert missing.status_code == 404
    assert httpx.get(f"{cas.cas}/v1/chunks/default/xyz", headers=cas.auth).status_code == 400


def test_recipe_and_xorb_live_in_the_blob_store(server: LiveServer, user: tuple[str, str]) -> None:
    cas = CasClient.connect(server, user[1], new_repo(server, user))
    built = build_file()
    cas.post_xorb(built)
    cas.post_shard(built.shard())
    blobs = server.app().state.blobs
    assert blobs.size(xorb_key(hashing.to_hex(built.xorb_hash))) == len(built.xorb_body)
    assert blobs.size(recipe_key(hashing.to_hex(built.file_hash))) is not None


@pytest.mark.parametrize("version", [1, 2])
def test_empty_range_of_unknown_file_is_404(
    server: LiveServer, user: tuple[str, str], version: int
) -> None:
    cas = CasClient.connect(server, user[1], new_repo(server, user))
    assert cas.reconstruction(bytes(32), version=version).status_code == 404


def test_dedup_answer_describes_every_xorb_of_the_chunks_file(
    server: LiveServer, user: tuple[str, str]
) -> None:
    """A client re-uploading a changed file finds all unchanged xorbs through one hit, even
    those holding no chunk it would query."""
    cas = CasClient.connect(server, user[1], new_repo(server, user))
    parts = [build_file() for _ in range(3)]
    for part in parts:
        assert cas.post_xorb(part).status_code == 200
    entries = [part.entry() for part in parts]
    terms = [term for entry in entries for term in entry.terms]
    chunks = [(r.hash, r.raw_len) for part in parts for r in part.refs]
    data = b"".join(part.data for part in parts)
    whole = shard.FileEntry(
        hashing.file_hash(chunks), terms, hashing.from_hex(hashlib.sha256(data).hexdigest())
    )
    upload = shard.build_upload_shard([whole], {p.xorb_hash: p.refs for p in parts})
    assert cas.post_shard(upload).json() == {"result": 1}
    first = hashing.to_hex(parts[0].refs[0].hash)
    answer = httpx.get(f"{cas.cas}/v1/chunks/default/{first}", headers=cas.auth)
    assert shard.parse_shard(answer.content).xorbs == [p.xorb_hash for p in parts]


def test_an_existing_xorb_is_not_confirmed_to_a_client_without_its_bytes(
    server: LiveServer, user: tuple[str, str]
) -> None:
    """`was_inserted: false` would tell anyone with a write token that some repo holds it."""
    built = build_file()
    owner = CasClient.connect(server, user[1], new_repo(server, user))
    assert owner.post_xorb(built).json() == {"was_inserted": True}
    other_user = server.new_user()
    prober = CasClient.connect(server, other_user[1], new_repo(server, other_user))
    probe = prober.post_xorb(built, body=b"\x00" * 64)
    assert probe.status_code == 400
    assert "was_inserted" not in probe.text
    assert prober.post_xorb(built).json() == {"was_inserted": False}  # with the bytes: fine


def test_a_chunk_that_inflates_past_its_declared_length_is_refused_cheaply(
    server: LiveServer, user: tuple[str, str]
) -> None:
    import lz4.frame

    from app.xet import xorb

    payload = lz4.frame.compress(b"\x00" * (16 * 1024 * 1024))  # ~64 KB that inflate to 16 MB
    declared = 1000
    body = xorb._header(len(payload), xorb.SCHEME_LZ4, declared) + payload
    built = build_file()
    cas = CasClient.connect(server, user[1], new_repo(server, user))
    started = time.monotonic()
    answer = cas.post_xorb(built, body=body)
    assert answer.status_code == 400 and "1000" in answer.text
    assert str(16 * 1024 * 1024) not in answer.text  # refused before inflating it all
    assert time.monotonic() - started < 5
