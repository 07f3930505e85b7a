"""Likes (issue 21) with the unmodified client and the page's button: counted in `model_info`,
listed for the user and the repo, sorted on, and a private repo's likes invisible to those who
may not read it."""

from __future__ import annotations

import re
import secrets

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.live import LiveServer


def like(server: LiveServer, token: str | None, repo_id: str, method: str = "POST") -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = f"{server.url}/api/models/{repo_id}/like"
    return httpx.request(method, url, headers=headers).status_code


def test_likes_count_list_and_stay_private(server: LiveServer) -> None:
    owner, owner_token = server.new_user()
    fan, fan_token = server.new_user()
    public, secret = (
        f"{owner}/liked-{secrets.token_hex(2)}",
        f"{owner}/hidden-{secrets.token_hex(2)}",
    )
    hub = HfApi(endpoint=server.url, token=owner_token)
    hub.create_repo(public)
    hub.create_repo(secret, private=True)

    assert like(server, None, public) == 401
    assert like(server, fan_token, public) == 200
    assert like(server, fan_token, public) == 200  # twice is still one like
    assert like(server, owner_token, public) == 200
    assert like(server, owner_token, secret) == 200
    assert like(server, fan_token, secret) == 404  # not readable: not found, as the repo
    assert hub.model_info(public).likes == 2
    likers = {u.username for u in hub.list_repo_likers(public)}
    assert likers == {owner, fan}
    assert hub.list_liked_repos(owner).models == [secret, public]
    # Others do not learn of the private repo from the owner's likes.
    assert HfApi(endpoint=server.url, token=fan_token).list_liked_repos(owner).models == [public]
    assert HfApi(endpoint=server.url, token=False).list_liked_repos(owner).models == [public]
    with pytest.raises(RepositoryNotFoundError):
        list(HfApi(endpoint=server.url, token=fan_token).list_repo_likers(secret))

    HfApi(endpoint=server.url, token=fan_token).unlike(public)
    assert hub.model_info(public).likes == 1
    ranked = [m.id for m in hub.list_models(author=owner, sort="likes")]
    assert ranked[0] in (public, secret)
    with pytest.raises(HfHubHTTPError):
        HfApi(endpoint=server.url, token=fan_token).list_liked_repos(
            f"nobody{secrets.token_hex(3)}"
        )


def test_like_button_on_the_repo_page(server: LiveServer) -> None:
    owner, token = server.new_user()
    repo_id = f"{owner}/button-{secrets.token_hex(2)}"
    HfApi(endpoint=server.url, token=token).create_repo(repo_id)
    name, password = f"liker{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    server.new_user(name, password=password)
    with httpx.Client(base_url=server.url) as browser:
        page = browser.get("/login").text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert csrf
        form = {"username": name, "password": password, "next": "/", "csrf_token": csrf.group(1)}
        assert browser.post("/login", data=form).status_code == 303
        card = browser.get(f"/{repo_id}").text
        assert 'id="like-button"' in card and 'aria-pressed="false"' in card
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', card)
        assert csrf
        assert (
            browser.post(f"/{repo_id}/like", data={"csrf_token": csrf.group(1)}).status_code == 303
        )
        assert 'aria-pressed="true"' in browser.get(f"/{repo_id}").text
        assert browser.post(f"/{repo_id}/like", data={}).status_code == 403  # no CSRF token
    assert HfApi(endpoint=server.url, token=token).model_info(repo_id).likes == 1
