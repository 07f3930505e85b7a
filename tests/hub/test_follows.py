"""Following people and organizations (issue 21): the profile's follow button, the follower
lists huggingface_hub reads, and the counts in the overviews."""

from __future__ import annotations

import secrets

import httpx
from huggingface_hub import HfApi

from tests.live import LiveServer
from tests.security.test_accounts import atrium, web_sign_in

PASSWORD = "correct horse battery"


def test_follow_from_the_profile_and_read_it_through_the_client(server: LiveServer) -> None:
    fan = f"fan{secrets.token_hex(3)}"
    _, fan_token = server.new_user(fan, password=PASSWORD)
    star, _ = server.new_user()
    org = f"lab{secrets.token_hex(3)}"
    atrium(server, "orgs", "create", org, "--owner", star)
    hub = HfApi(endpoint=server.url, token=fan_token)

    browser = web_sign_in(server, fan, PASSWORD)
    try:
        profile = browser.get(f"/{star}").text
        assert 'id="follow-button"' in profile and "0 followers" in profile
        csrf = profile.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        followed = browser.post(f"/{star}/follow", data={"csrf_token": csrf})
        assert followed.status_code == 303
        profile = browser.get(f"/{star}").text
        assert "1 follower<" in profile and ">Unfollow<" in profile
        # Nobody follows themselves: their own profile has no button.
        assert 'id="follow-button"' not in browser.get(f"/{fan}").text
    finally:
        browser.close()
    auth = {"Authorization": f"Bearer {fan_token}"}
    assert httpx.post(f"{server.url}/api/users/{org}/follow", headers=auth).status_code == 200

    assert [u.username for u in hub.list_user_followers(star)] == [fan]
    assert [u.username for u in hub.list_user_following(fan)] == [star]  # users only
    assert [u.username for u in hub.list_organization_followers(org)] == [fan]
    overview = hub.get_user_overview(star)
    assert overview.num_followers == 1 and overview.num_following == 0
    assert hub.get_user_overview(fan).num_following == 2
    assert hub.get_organization_overview(org).num_followers == 1

    # Unfollowing, and what cannot be followed.
    assert httpx.delete(f"{server.url}/api/users/{star}/follow", headers=auth).status_code == 200
    assert list(hub.list_user_followers(star)) == []
    assert httpx.post(f"{server.url}/api/users/{fan}/follow", headers=auth).status_code == 400
    assert httpx.post(f"{server.url}/api/users/nobody-here/follow", headers=auth).status_code == 404
    assert httpx.post(f"{server.url}/api/users/{star}/follow").status_code == 401
    assert httpx.get(f"{server.url}/api/users/nobody-here/followers").status_code == 404
