"""Collections (issue 21) with the unmodified client and the pages: create, items with notes
and positions, slugs that survive a rename, private collections and private items hidden from
those who may not read them."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.live import LiveServer


def test_collections_through_the_client(server: LiveServer) -> None:
    owner, token = server.new_user()
    _, other_token = server.new_user()
    hub, other = (
        HfApi(endpoint=server.url, token=token),
        HfApi(endpoint=server.url, token=other_token),
    )
    model = hub.create_repo(f"{owner}/m-{secrets.token_hex(2)}").repo_id
    data = hub.create_repo(f"{owner}/d-{secrets.token_hex(2)}", repo_type="dataset").repo_id
    hidden = hub.create_repo(f"{owner}/h-{secrets.token_hex(2)}", private=True).repo_id
    nested = hub.create_collection(f"Nested {secrets.token_hex(2)}")

    made = hub.create_collection("My cool stuff", description="Lots of it")
    assert made.slug.startswith(f"{owner}/my-cool-stuff-") and made.items == []
    assert made.url == f"{server.url}/collections/{made.slug}"
    with pytest.raises(HfHubHTTPError) as twice:
        hub.create_collection("My cool stuff")
    assert twice.value.response.status_code == 409
    assert hub.create_collection("My cool stuff", exists_ok=True).slug == made.slug

    hub.add_collection_item(made.slug, model, "model", note="This is my model")
    hub.add_collection_item(made.slug, data, "dataset")
    hub.add_collection_item(made.slug, nested.slug, "collection")
    hub.add_collection_item(made.slug, hidden, "model")
    with pytest.raises(HfHubHTTPError):
        hub.add_collection_item(made.slug, model, "model")  # already in
    with pytest.raises(HfHubHTTPError):
        hub.add_collection_item(made.slug, model, "dataset")  # no such dataset
    got = hub.get_collection(made.slug)
    assert [(i.item_id, i.item_type) for i in got.items] == [
        (model, "model"),
        (data, "dataset"),
        (nested.slug, "collection"),
        (hidden, "model"),
    ]
    assert got.items[0].note == "This is my model"
    # Another user sees the collection without the private repo in it, and cannot edit it.
    assert [i.item_id for i in other.get_collection(made.slug).items] == [model, data, nested.slug]
    with pytest.raises(HfHubHTTPError) as foreign:
        other.add_collection_item(made.slug, data, "dataset")
    assert foreign.value.response.status_code == 403

    hub.update_collection_item(made.slug, got.items[0].item_object_id, note="New note", position=1)
    moved = hub.get_collection(made.slug)
    assert [i.item_id for i in moved.items][:2] == [data, model] and moved.items[
        1
    ].note == "New note"
    hub.delete_collection_item(made.slug, moved.items[1].item_object_id)
    hub.delete_collection_item(made.slug, moved.items[1].item_object_id, missing_ok=True)
    assert model not in [i.item_id for i in hub.get_collection(made.slug).items]

    # Renamed and private: the old slug still answers; others get 404.
    renamed = hub.update_collection_metadata(
        made.slug, title="Renamed stuff", private=True, theme="pink"
    )
    assert renamed.slug != made.slug and renamed.slug.split("-")[-1] == made.slug.split("-")[-1]
    assert hub.get_collection(made.slug).slug == renamed.slug and renamed.private
    with pytest.raises(HfHubHTTPError) as private:
        other.get_collection(renamed.slug)
    assert private.value.response.status_code == 404
    assert renamed.slug not in [c.slug for c in other.list_collections(owner=owner)]
    assert renamed.slug in [c.slug for c in hub.list_collections(owner=owner)]
    assert [c.slug for c in hub.list_collections(item=f"datasets/{data}")] == [renamed.slug]

    hub.delete_collection(renamed.slug)
    with pytest.raises(HfHubHTTPError):
        hub.delete_collection(renamed.slug)
    hub.delete_collection(renamed.slug, missing_ok=True)


def test_collection_pages(server: LiveServer) -> None:
    name, password = f"curator{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    _, token = server.new_user(name, password=password)
    model = (
        HfApi(endpoint=server.url, token=token)
        .create_repo(f"{name}/pick-{secrets.token_hex(2)}")
        .repo_id
    )
    with httpx.Client(base_url=server.url) as browser:

        def csrf(html: str) -> str:
            found = re.search(r'name="csrf_token" value="([^"]+)"', html)
            assert found
            return found.group(1)

        login = {
            "username": name,
            "password": password,
            "next": "/",
            "csrf_token": csrf(browser.get("/login").text),
        }
        assert browser.post("/login", data=login).status_code == 303
        form = {
            "namespace": name,
            "title": "Best picks",
            "csrf_token": csrf(browser.get("/collections/new").text),
        }
        made = browser.post("/collections/new", data=form)
        assert made.status_code == 303
        page_url = made.headers["location"]
        page = browser.get(page_url).text
        added = browser.post(
            f"{page_url}/items",
            data={"item": model, "type": "model", "note": "The one", "csrf_token": csrf(page)},
        )
        assert added.status_code == 303
        shown = browser.get(page_url).text
        assert model in shown and "The one" in shown
        assert "Best picks" in browser.get(f"/{name}").text
        # The repo's page names the collections it is in, linking to them; the profile too.
        card = browser.get(f"/{model}").text
        assert 'id="in-collections"' in card and f'href="{page_url}"' in card
        assert f'href="{page_url}"' in browser.get(f"/{name}").text
        # A private collection is named there only to those who may see it.
        hub = HfApi(endpoint=server.url, token=token)
        secret = hub.create_collection("Hidden shortlist", private=True)
        hub.add_collection_item(secret.slug, model, "model")
        assert "Hidden shortlist" in browser.get(f"/{model}").text
    assert "Hidden shortlist" not in httpx.get(f"{server.url}/{model}").text
    assert "Best picks" in httpx.get(f"{server.url}{page_url}").text  # public: anyone reads it
