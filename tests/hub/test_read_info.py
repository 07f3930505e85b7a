"""Repo info and repo search (hf-protocol.md §5.1, §5.2) through the real huggingface_hub."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils._pagination import paginate

from tests.hub.readkit import (  # noqa: F401 - no_xet is an autouse fixture
    README,
    Owner,
    add_ref,
    commit,
    make_repo,
    new_owner,
    no_xet,
)
from tests.live import LiveServer

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@dataclass
class World:
    owner: Owner
    other: Owner
    model: str
    first_sha: str
    head_sha: str
    lfs_data: bytes


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    owner, other = new_owner(server), new_owner(server)
    lfs_data = b"\x00weights" * 100
    repo, first = make_repo(owner, "info", {"README.md": README, "config.json": b"{}"})
    assert first is not None
    head = commit(owner, repo, {"sub/notes.txt": b"notes"}, {"model.safetensors": lfs_data})
    add_ref(owner, repo, "refs/tags/v1", first.sha)
    make_repo(owner, "secret", {"a.txt": b"x"}, private=True)
    make_repo(owner, "data", {"README.md": b"---\nlicense: apache-2.0\n---\n"}, repo_type="dataset")
    make_repo(owner, "app", {"README.md": b"---\nsdk: gradio\n---\n"}, repo_type="space")
    return World(owner, other, f"{owner.name}/info", first.sha, head.sha, lfs_data)


def test_model_info_has_the_hub_shape(world: World) -> None:
    info = world.owner.api.model_info(world.model)
    assert info.id == world.model and info.sha == world.head_sha
    assert info.author == world.owner.name and info.private is False
    assert info.pipeline_tag == "text-generation" and info.library_name == "transformers"
    assert {"license:mit", "atrium-test", "transformers"} <= set(info.tags or [])
    assert info.card_data is not None and info.card_data.license == "mit"
    names = sorted(s.rfilename for s in info.siblings or [])
    expected = [".gitattributes", "README.md", "config.json", "model.safetensors", "sub/notes.txt"]
    assert names == expected
    assert info.last_modified is not None and info.created_at is not None


def test_model_info_dates_end_with_z(world: World, server: LiveServer) -> None:
    body = httpx.get(f"{server.url}/api/models/{world.model}").json()
    assert ISO_Z.match(body["lastModified"]) and ISO_Z.match(body["createdAt"])


def test_files_metadata_gives_sizes_blob_ids_and_lfs(world: World) -> None:
    info = world.owner.api.model_info(world.model, files_metadata=True)
    by_name = {s.rfilename: s for s in info.siblings or []}
    weights = by_name["model.safetensors"]
    assert weights.size == len(world.lfs_data) and weights.lfs is not None
    assert weights.lfs.size == len(world.lfs_data) and weights.lfs.pointer_size > 100
    assert by_name["config.json"].size == 2 and by_name["config.json"].lfs is None
    assert by_name["config.json"].blob_id == "9e26dfeeb6e641a33dae4961196235bdb965b21b"


def test_model_info_at_a_revision_and_a_tag(world: World) -> None:
    api = world.owner.api
    assert api.model_info(world.model, revision=world.first_sha).sha == world.first_sha
    tagged = api.model_info(world.model, revision="v1")
    assert tagged.sha == world.first_sha
    assert "model.safetensors" not in {s.rfilename for s in tagged.siblings or []}
    assert api.model_info(world.model, revision=world.head_sha[:10]).sha == world.head_sha


def test_expand_limits_the_keys(world: World, server: LiveServer) -> None:
    url = f"{server.url}/api/models/{world.model}?expand=downloads&expand=sha"
    body = httpx.get(url).json()
    assert set(body) == {"_id", "id", "modelId", "downloads", "sha"}
    info = world.owner.api.model_info(world.model, expand=["likes"])
    assert info.likes == 0 and info.siblings is None


def test_dataset_info_and_repo_info(world: World) -> None:
    api = world.owner.api
    info = api.dataset_info(f"{world.owner.name}/data")
    assert info.sha and "license:apache-2.0" in (info.tags or [])
    assert api.repo_info(f"{world.owner.name}/data", repo_type="dataset").id == info.id
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"{world.owner.name}/data")


def test_space_info_and_listing(world: World) -> None:
    api = world.owner.api
    info = api.space_info(f"{world.owner.name}/app")
    assert info.sdk == "gradio" and info.sha
    assert [s.id for s in api.list_spaces(author=world.owner.name)] == [info.id]


def test_unknown_repo_and_revision_raise_the_hub_errors(world: World) -> None:
    api = world.owner.api
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"{world.owner.name}/nope")
    with pytest.raises(RevisionNotFoundError):
        api.model_info(world.model, revision="no-such-branch")


def test_private_repo_is_hidden_from_anonymous_and_other_users(world: World) -> None:
    secret = f"{world.owner.name}/secret"
    assert world.owner.api.model_info(secret).private is True
    for api in (HfApi(endpoint=world.owner.server.url), world.other.api):
        with pytest.raises(RepositoryNotFoundError):
            api.model_info(secret)
        assert not api.repo_exists(secret)
        listed = {m.id for m in api.list_models(author=world.owner.name)}
        assert secret not in listed and world.model in listed
    assert secret in {m.id for m in world.owner.api.list_models(author=world.owner.name)}


# --- search -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog(server: LiveServer) -> Owner:
    """Five models with distinct downloads and likes, and a filterable card on two."""
    owner = new_owner(server)
    app = server.app()
    from app.db.engine import write_transaction
    from app.repos.models import Repo

    for index in range(5):
        files = {"README.md": README} if index % 2 == 0 else {"a.txt": b"a"}
        repo, _ = make_repo(owner, f"cat-{index}", files)
        with write_transaction(app.state.sessionmaker) as session:
            row = session.get(Repo, repo.id)
            assert row is not None
            row.downloads, row.likes = 10 * index, 50 - index
    return owner


def test_list_models_by_author_search_and_filter(catalog: Owner) -> None:
    api = catalog.api
    ids = [m.id for m in api.list_models(author=catalog.name)]
    assert sorted(ids) == [f"{catalog.name}/cat-{i}" for i in range(5)]
    assert [m.id for m in api.list_models(search=f"{catalog.name}/cat-3")] == [
        f"{catalog.name}/cat-3"
    ]
    filtered = {m.id for m in api.list_models(author=catalog.name, filter="license:mit")}
    assert filtered == {f"{catalog.name}/cat-{i}" for i in (0, 2, 4)}
    both = api.list_models(author=catalog.name, filter=["transformers", "atrium-test"])
    assert len(list(both)) == 3
    assert list(api.list_models(author=catalog.name, filter="license:apache-2.0")) == []


@pytest.mark.parametrize(
    ("sort", "order"),
    [("downloads", [4, 3, 2, 1, 0]), ("likes", [0, 1, 2, 3, 4]), ("created_at", [4, 3, 2, 1, 0])],
)
def test_list_models_sorts_descending(catalog: Owner, sort: str, order: list[int]) -> None:
    ids = [m.id for m in catalog.api.list_models(author=catalog.name, sort=sort)]
    assert ids == [f"{catalog.name}/cat-{i}" for i in order]


def test_list_models_limit_and_full(catalog: Owner) -> None:
    models = list(catalog.api.list_models(author=catalog.name, limit=2, full=True))
    assert len(models) == 2
    assert all(m.sha and m.siblings for m in models)
    carded = list(catalog.api.list_models(author=catalog.name, cardData=True, sort="downloads"))
    assert carded[0].card_data is not None and carded[0].card_data.license == "mit"


def test_pagination_follows_absolute_links_with_every_parameter(
    catalog: Owner, server: LiveServer
) -> None:
    url: str | None = (
        f"{server.url}/api/models?author={catalog.name}&sort=downloads&direction=1&limit=2"
    )
    pages = []
    while url:
        answer = httpx.get(url)
        assert answer.status_code == 200
        pages.append([m["id"].rsplit("-", 1)[1] for m in answer.json()])
        url = answer.links.get("next", {}).get("url")
        if url:
            assert url.startswith("http://") and "author=" in url and "sort=downloads" in url
    assert pages == [["0", "1"], ["2", "3"], ["4"]]


def test_the_clients_paginator_walks_every_page(catalog: Owner, server: LiveServer) -> None:
    params = [("author", catalog.name), ("sort", "likes"), ("limit", 2), ("filter", "atrium-test")]
    items = list(paginate(f"{server.url}/api/models", params=params, headers={}))
    assert [m["id"].rsplit("-", 1)[1] for m in items] == ["0", "2", "4"]


def test_list_datasets_answers_only_datasets(world: World) -> None:
    ids = [d.id for d in world.owner.api.list_datasets(author=world.owner.name)]
    assert ids == [f"{world.owner.name}/data"]


def test_bad_sort_and_cursor_are_400(server: LiveServer) -> None:
    assert httpx.get(f"{server.url}/api/models?sort=nope").status_code == 400
    assert httpx.get(f"{server.url}/api/models?cursor=%%%").status_code == 400


# --- validate-yaml ------------------------------------------------------------------------


def test_validate_yaml_accepts_good_and_refuses_bad_metadata(server: LiveServer) -> None:
    ok = httpx.post(
        f"{server.url}/api/validate-yaml", json={"content": README.decode(), "repoType": "model"}
    )
    assert ok.status_code == 200 and ok.json() == {"errors": [], "warnings": []}
    bad = httpx.post(
        f"{server.url}/api/validate-yaml",
        json={"content": "---\nlicense: [mit\n---\n", "repoType": "model"},
    )
    assert bad.status_code == 400 and bad.json()["errors"][0]["message"]


INVALID_MODEL_INDEX = "---\nmodel-index: foo\n---\n\nA card with invalid metadata.\n"


def test_the_client_refuses_a_card_the_hub_would_refuse_before_uploading(
    server: LiveServer,
) -> None:
    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo_id = f"{owner}/cards-{secrets.token_hex(2)}"
    hub.create_repo(repo_id)
    cases = {
        INVALID_MODEL_INDEX: '"model-index" must be an array',
        "---\nmodel-index:\n- name: m\n  results:\n  - task: {type: t}\n---\n": (
            '"model-index[0].results[0].dataset" is required'
        ),
        "---\ntags: 5\n---\n": '"tags" must be a string or an array of strings',
        "---\nlibrary_name: [a, b]\n---\n": '"library_name" must be a string',
    }
    for card, message in cases.items():
        with pytest.raises(ValueError, match=r"Invalid metadata in README\.md") as refused:
            hub.upload_file(
                path_or_fileobj=card.encode(), path_in_repo="README.md", repo_id=repo_id
            )
        assert message in str(refused.value)
    assert hub.list_repo_files(repo_id) == [".gitattributes"]
    # A card without metadata is committed with a warning; a complete one without.
    with pytest.warns(UserWarning, match="Empty or missing yaml metadata"):
        hub.upload_file(path_or_fileobj=b"# Hello", path_in_repo="README.md", repo_id=repo_id)
    good = (
        "---\nlicense: mit\ntags: [a]\nmodel-index:\n- name: m\n  results:\n"
        "  - task: {type: text-classification}\n    dataset: {type: imdb, name: IMDb}\n"
        "    metrics: [{type: accuracy, value: 0.9}]\n---\n"
    )
    hub.upload_file(path_or_fileobj=good.encode(), path_in_repo="README.md", repo_id=repo_id)
    assert hub.model_info(repo_id).card_data["license"] == "mit"
    # Dataset cards list licenses; a Space's SDK is one the Hub knows.
    answer = httpx.post(
        f"{server.url}/api/validate-yaml",
        json={"content": "---\nlicense: [mit, apache-2.0]\n---\n", "repoType": "dataset"},
    )
    assert answer.status_code == 200 and answer.json()["errors"] == []
    answer = httpx.post(
        f"{server.url}/api/validate-yaml",
        json={"content": "---\nsdk: flask\n---\n", "repoType": "space"},
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["message"].startswith('"sdk" must be one of')


def test_a_new_space_has_the_card_the_hub_gives_it(server: LiveServer) -> None:
    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo_id = f"{owner}/my-demo-{secrets.token_hex(2)}"
    hub.create_repo(repo_id, repo_type="space", space_sdk="gradio")
    assert set(hub.list_repo_files(repo_id, repo_type="space")) == {".gitattributes", "README.md"}
    info = hub.space_info(repo_id)
    assert info.sdk == "gradio" and info.card_data["title"].startswith("my demo")
    hub.delete_file("README.md", repo_id, repo_type="space")  # the Hub's test does this
    refused = httpx.post(
        f"{server.url}/api/repos/create",
        headers={"Authorization": f"Bearer {token}"},
        json={"name": "flask-app", "type": "space", "sdk": "flask"},
    )
    assert refused.status_code == 400 and "Invalid sdk 'flask'" in refused.text
    assert not hub.repo_exists(f"{owner}/flask-app", repo_type="space")
