"""Repo management through the real huggingface_hub (hf-protocol.md §3): create, delete, move,
settings, branches and tags, and who may do it."""

from __future__ import annotations

import secrets

import httpx
import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from huggingface_hub.errors import (
    BadRequestError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from tests.hub.readkit import Owner, new_owner, no_xet  # noqa: F401 - no_xet is autouse
from tests.live import LiveServer


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


def _name() -> str:
    return f"r{secrets.token_hex(4)}"


def test_create_repo_returns_its_url_and_an_initial_commit(owner: Owner) -> None:
    url = owner.api.create_repo(f"{owner.name}/{_name()}")
    assert url.startswith(owner.server.url) and url.repo_id.startswith(owner.name)
    info = owner.api.model_info(url.repo_id)
    assert info.sha and [s.rfilename for s in info.siblings or []] == [".gitattributes"]


@pytest.mark.parametrize("repo_type", ["dataset", "space"])
def test_create_repo_of_other_types_uses_their_url_prefix(owner: Owner, repo_type: str) -> None:
    sdk = "gradio" if repo_type == "space" else None
    url = owner.api.create_repo(f"{owner.name}/{_name()}", repo_type=repo_type, space_sdk=sdk)
    assert f"/{repo_type}s/{owner.name}/" in url
    assert owner.api.repo_info(url.repo_id, repo_type=repo_type).id == url.repo_id


def test_create_existing_repo_is_409_unless_exist_ok(owner: Owner) -> None:
    repo_id = f"{owner.name}/{_name()}"
    first = owner.api.create_repo(repo_id)
    assert owner.api.create_repo(repo_id, exist_ok=True) == first
    with pytest.raises(HfHubHTTPError) as caught:
        owner.api.create_repo(repo_id)
    assert caught.value.response.status_code == 409


@pytest.mark.parametrize(
    "name", ["-lead", "trail-", "a..b", "a--b", "x" * 97, "sp ace", "dot.git", "ünï"]
)
def test_create_repo_with_invalid_name_is_refused(owner: Owner, name: str) -> None:
    response = httpx.post(
        f"{owner.server.url}/api/repos/create",
        json={"name": name, "organization": owner.name},
        headers={"authorization": f"Bearer {owner.token}"},
    )
    assert response.status_code == 400 and response.headers["x-error-message"]
    assert name not in {m.id.split("/")[1] for m in owner.api.list_models(author=owner.name)}


def test_create_repo_in_someone_elses_namespace_is_forbidden(
    owner: Owner, server: LiveServer
) -> None:
    other = new_owner(server)
    with pytest.raises(HfHubHTTPError) as caught:
        other.api.create_repo(f"{owner.name}/{_name()}")
    assert caught.value.response.status_code == 403


def test_read_token_cannot_create_commit_or_delete(owner: Owner, server: LiveServer) -> None:
    repo_id = f"{owner.name}/{_name()}"
    owner.api.create_repo(repo_id)
    _, read_token = server.new_user(owner.name + "x", role="read")
    reader = HfApi(endpoint=server.url, token=read_token)
    # A read token of the owner himself:
    from app.auth.service import create_token, get_user
    from app.db.engine import write_transaction

    with write_transaction(server.app().state.sessionmaker) as session:
        own_read = create_token(session, get_user(session, owner.name), role="read").secret
    for api in (reader, HfApi(endpoint=server.url, token=own_read)):
        with pytest.raises(HfHubHTTPError) as caught:
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
        assert caught.value.response.status_code == 403
        with pytest.raises(HfHubHTTPError):
            api.delete_repo(repo_id)
        with pytest.raises(HfHubHTTPError):
            api.create_branch(repo_id, branch="b")
    assert [s.rfilename for s in owner.api.model_info(repo_id).siblings or []] == [".gitattributes"]


def test_anonymous_cannot_create_a_repo(server: LiveServer) -> None:
    response = httpx.post(f"{server.url}/api/repos/create", json={"name": "anon"})
    assert response.status_code == 401


def test_delete_repo_and_missing_ok(owner: Owner) -> None:
    repo_id = f"{owner.name}/{_name()}"
    owner.api.create_repo(repo_id)
    owner.api.delete_repo(repo_id)
    assert not owner.api.repo_exists(repo_id)
    with pytest.raises(RepositoryNotFoundError):
        owner.api.delete_repo(repo_id)
    owner.api.delete_repo(repo_id, missing_ok=True)


def test_move_repo_keeps_its_files(owner: Owner) -> None:
    old, new = f"{owner.name}/{_name()}", f"{owner.name}/{_name()}"
    owner.api.create_repo(old)
    owner.api.upload_file(path_or_fileobj=b"kept", path_in_repo="a.txt", repo_id=old)
    owner.api.move_repo(old, new)
    assert "a.txt" in owner.api.list_repo_files(new)
    assert owner.api.model_info(old).id == new  # the old name redirects, as on the Hub


def test_private_repo_is_invisible_to_anonymous_and_other_users(
    owner: Owner, server: LiveServer
) -> None:
    repo_id = f"{owner.name}/{_name()}"
    owner.api.create_repo(repo_id, private=True)
    owner.api.upload_file(path_or_fileobj=b"secret", path_in_repo="s.txt", repo_id=repo_id)
    assert owner.api.model_info(repo_id).private is True
    other = new_owner(server)
    for api in (HfApi(endpoint=server.url, token=False), other.api):
        with pytest.raises(RepositoryNotFoundError):
            api.model_info(repo_id)
        with pytest.raises(RepositoryNotFoundError):
            api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    anon = httpx.get(f"{server.url}/{repo_id}/resolve/main/s.txt")
    assert anon.status_code in (401, 404) and anon.headers["x-error-code"] == "RepoNotFound"
    owner.api.update_repo_settings(repo_id, private=False, gated="manual")
    info = other.api.model_info(repo_id)
    assert info.private is False and info.gated == "manual"


def test_branches_and_tags_are_created_and_deleted(owner: Owner) -> None:
    repo_id = f"{owner.name}/{_name()}"
    owner.api.create_repo(repo_id)
    first = owner.api.upload_file(path_or_fileobj=b"1", path_in_repo="v.txt", repo_id=repo_id)
    owner.api.create_branch(repo_id, branch="feature/x")
    owner.api.create_branch(repo_id, branch="feature/x", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as caught:
        owner.api.create_branch(repo_id, branch="feature/x")
    assert caught.value.response.status_code == 409
    owner.api.upload_file(
        path_or_fileobj=b"2", path_in_repo="v.txt", repo_id=repo_id, revision="feature/x"
    )
    owner.api.create_tag(repo_id, tag="v1", revision=first.oid)
    owner.api.create_branch(repo_id, branch="from-tag", revision="v1")
    refs = owner.api.list_repo_refs(repo_id)
    branches = {b.name: b.target_commit for b in refs.branches}
    assert set(branches) == {"main", "feature/x", "from-tag"}
    assert branches["from-tag"] == first.oid == {t.name: t.target_commit for t in refs.tags}["v1"]
    with pytest.raises(BadRequestError):
        owner.api.create_branch(repo_id, branch="bad..name")
    owner.api.delete_tag(repo_id, tag="v1")
    owner.api.delete_branch(repo_id, branch="feature/x")
    with pytest.raises(RevisionNotFoundError):
        owner.api.delete_tag(repo_id, tag="v1")
    refs = owner.api.list_repo_refs(repo_id)
    assert [b.name for b in refs.branches] == ["from-tag", "main"] or len(refs.branches) == 2
    assert refs.tags == []


def test_history_across_branches_and_tags(owner: Owner) -> None:
    repo_id = f"{owner.name}/{_name()}"
    owner.api.create_repo(repo_id)
    base = owner.api.upload_file(path_or_fileobj=b"a", path_in_repo="a.txt", repo_id=repo_id)
    owner.api.create_branch(repo_id, branch="dev")
    owner.api.create_tag(repo_id, tag="base")
    dev = owner.api.create_commit(
        repo_id,
        [CommitOperationAdd("dev.txt", b"dev")],
        commit_message="on dev",
        revision="dev",
    )
    main = owner.api.upload_file(path_or_fileobj=b"b", path_in_repo="b.txt", repo_id=repo_id)
    titles = {
        rev: [c.title for c in owner.api.list_repo_commits(repo_id, revision=rev)]
        for rev in ("main", "dev", "base")
    }
    assert titles["dev"][0] == "on dev" and titles["dev"][1:] == titles["base"]
    assert titles["main"][1:] == titles["base"] and "on dev" not in titles["main"]
    assert set(owner.api.list_repo_files(repo_id, revision="dev")) == {
        ".gitattributes",
        "a.txt",
        "dev.txt",
    }
    assert "b.txt" not in owner.api.list_repo_files(repo_id, revision="base")
    assert owner.api.model_info(repo_id, revision="base").sha == base.oid
    assert owner.api.model_info(repo_id, revision="dev").sha == dev.oid
    assert owner.api.model_info(repo_id).sha == main.oid


def test_super_squash_keeps_files_and_leaves_one_commit(owner: Owner) -> None:
    repo_id = f"{owner.name}/{_name()}"
    owner.api.create_repo(repo_id)
    for n in range(3):
        owner.api.upload_file(path_or_fileobj=b"%d" % n, path_in_repo=f"{n}.txt", repo_id=repo_id)
    files = owner.api.list_repo_files(repo_id)
    owner.api.super_squash_history(repo_id, commit_message="squashed")
    assert [c.title for c in owner.api.list_repo_commits(repo_id)] == ["squashed"]
    assert owner.api.list_repo_files(repo_id) == files
