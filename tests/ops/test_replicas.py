"""Two `atrium serve` processes on one database and one store behave as one hub.

Writes go through one replica and reads through the other, with the real client; commits
from both at once are all kept; a token revoked in the shared database is refused by both at
once (no replica caches credentials); only one replica may sweep garbage at a time.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, hf_hub_download
from sqlalchemy import select

from app.auth.models import Token
from app.auth.service import get_user, revoke_token
from app.db.engine import write_transaction
from app.maintenance import sweeper_lock
from tests.live import LiveServer, start_server

COMMITS_PER_REPLICA = 8


@pytest.fixture(scope="module")
def replicas(server: LiveServer) -> Iterator[tuple[LiveServer, LiveServer]]:
    """The session's server and a second process on the same database and store."""
    second = start_server(server.backend)
    yield server, second
    second.stop()


@pytest.fixture(scope="module")
def owner(replicas: tuple[LiveServer, LiveServer]) -> tuple[str, str]:
    return replicas[0].new_user(f"replica{secrets.token_hex(4)}")


def apis(replicas: tuple[LiveServer, LiveServer], token: str) -> tuple[HfApi, HfApi]:
    a, b = replicas
    return HfApi(endpoint=a.url, token=token), HfApi(endpoint=b.url, token=token)


def test_a_write_on_one_replica_is_read_at_once_on_the_other(
    replicas: tuple[LiveServer, LiveServer], owner: tuple[str, str], hf_home: Path
) -> None:
    name, token = owner
    on_a, on_b = apis(replicas, token)
    repo_id = f"{name}/seen-everywhere"
    on_a.create_repo(repo_id)
    for version in (b"v1", b"v2", b"v3"):
        info = on_a.upload_file(path_or_fileobj=version, path_in_repo="f.txt", repo_id=repo_id)
        assert on_b.model_info(repo_id).sha == info.oid  # no stale answer on the other
        path = hf_hub_download(repo_id, "f.txt", endpoint=replicas[1].url, token=token)
        assert Path(path).read_bytes() == version

    on_b.create_branch(repo_id, branch="dev")
    assert "dev" in {b.name for b in on_a.list_repo_refs(repo_id).branches}
    on_a.delete_branch(repo_id, branch="dev")
    assert "dev" not in {b.name for b in on_b.list_repo_refs(repo_id).branches}


def test_concurrent_commits_on_both_replicas_are_all_kept(
    replicas: tuple[LiveServer, LiveServer], owner: tuple[str, str]
) -> None:
    name, token = owner
    on_a, on_b = apis(replicas, token)
    repo_id = f"{name}/busy"
    on_a.create_repo(repo_id)

    def commit(job: tuple[HfApi, str]) -> str:
        api, path = job
        return api.upload_file(
            path_or_fileobj=path.encode(), path_in_repo=path, repo_id=repo_id
        ).oid

    jobs = [
        (api, f"{label}/{index}.txt")
        for index in range(COMMITS_PER_REPLICA)
        for api, label in ((on_a, "a"), (on_b, "b"))
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        shas = list(pool.map(commit, jobs))

    assert len(set(shas)) == len(jobs)
    files = set(on_b.list_repo_files(repo_id))
    assert {path for _, path in jobs} <= files
    history = [c.commit_id for c in on_a.list_repo_commits(repo_id)]
    assert set(shas) <= set(history)  # one linear history holds every acknowledged commit
    assert len(history) == len(jobs) + 1  # + the initial commit


def test_a_revoked_token_is_refused_by_every_replica(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    a = replicas[0]
    name, token = a.new_user(f"revoked{secrets.token_hex(4)}")
    for replica in replicas:
        assert HfApi(endpoint=replica.url, token=token).whoami()["name"] == name
    with write_transaction(a.app().state.sessionmaker) as session:
        user = get_user(session, name)
        token_id = session.scalar(select(Token.id).where(Token.user_id == user.id))
        assert token_id is not None
        revoke_token(session, user, token_id)
    for replica in replicas:
        response = httpx.get(
            f"{replica.url}/api/whoami-v2",
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert response.status_code == 401


def test_only_one_replica_sweeps_garbage_at_a_time(
    replicas: tuple[LiveServer, LiveServer],
) -> None:
    a, b = replicas
    app = a.app()
    with sweeper_lock(app.state.engine, app.state.settings.data_dir):
        busy = b.cli("gc", "--dry-run")
    assert busy.returncode == 1
    assert "another `atrium gc` is running" in busy.stderr
