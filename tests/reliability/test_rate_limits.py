"""Rate limits on failed sign-ins and invalid tokens (issue 10 §8), with the default settings.

Every test speaks from an address of its own: the server trusts X-Forwarded-For from the local
proxy address (ATRIUM_TRUSTED_PROXIES defaults to 127.0.0.1), so the address limits these tests
reach do not touch the other tests, whose requests all come from 127.0.0.1."""

from __future__ import annotations

import re
import secrets

import httpx

from app.config import Settings
from tests.live import LiveServer

DEFAULTS = Settings()


def own_address() -> dict[str, str]:
    return {"X-Forwarded-For": f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.7"}


def sign_in(browser: httpx.Client, name: str, password: str) -> httpx.Response:
    form = browser.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token, "no CSRF field on the sign-in form"
    data = {"username": name, "password": password, "csrf_token": token[1]}
    return browser.post("/login", data=data)


def test_a_limited_account_is_refused_even_with_the_right_password(server: LiveServer) -> None:
    name, token = server.new_user(password="right password")
    with httpx.Client(base_url=server.url, headers=own_address(), timeout=30) as browser:
        failures = [sign_in(browser, name, "wrong").status_code for _ in range(10)]
        refused = sign_in(browser, name, "right password")
        signed_in = browser.get("/settings/tokens").status_code
    assert failures == [401] * DEFAULTS.login_limit_account
    assert refused.status_code == 429
    assert 0 < int(refused.headers["retry-after"]) <= DEFAULTS.login_window
    assert "text/html" in refused.headers["content-type"]
    assert "try again in 15 minutes" in refused.text
    assert signed_in == 303  # to the sign-in form: the right password did not sign in
    # The account is limited from any address; its tokens keep working.
    with httpx.Client(base_url=server.url, headers=own_address(), timeout=30) as elsewhere:
        assert sign_in(elsewhere, name, "right password").status_code == 429
        whoami = elsewhere.get("/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    assert whoami.status_code == 200 and whoami.json()["name"] == name


def test_one_address_failing_on_many_accounts_is_limited(server: LiveServer) -> None:
    names = [server.new_user(password="pw")[0] for _ in range(DEFAULTS.login_limit_ip // 5 + 1)]
    statuses = []
    with httpx.Client(base_url=server.url, headers=own_address(), timeout=30) as browser:
        for name in names:  # 5 tries each: under the account limit
            statuses += [sign_in(browser, name, "wrong").status_code for _ in range(5)]
        last = sign_in(browser, names[-1], "pw")
    assert statuses[: DEFAULTS.login_limit_ip] == [401] * DEFAULTS.login_limit_ip
    assert set(statuses[DEFAULTS.login_limit_ip :]) == {429}
    assert last.status_code == 429
    with httpx.Client(base_url=server.url, headers=own_address(), timeout=30) as other:
        assert sign_in(other, names[-1], "pw").status_code == 303  # another address: fine


def test_the_owner_keeps_using_a_valid_token_while_someone_guesses_from_the_same_address(
    server: LiveServer,
) -> None:
    name, token = server.new_user()
    address = own_address()
    with httpx.Client(base_url=server.url, headers=address, timeout=30) as client:
        guesses = [
            client.get("/api/whoami-v2", headers={"Authorization": f"Bearer atr_{'x' * i}"})
            for i in range(DEFAULTS.token_limit_ip + 1)
        ]
        owner = client.get("/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
        git = client.get(
            f"/{name}/nothing.git/info/refs?service=git-receive-pack",
            auth=("git", f"atr_{'y' * 40}"),
        )
    statuses = [g.status_code for g in guesses]
    assert statuses == [401] * DEFAULTS.token_limit_ip + [429]
    limited = guesses[-1]
    assert 0 < int(limited.headers["retry-after"]) <= DEFAULTS.token_window
    assert "Too many invalid tokens" in limited.json()["error"]
    assert owner.status_code == 200 and owner.json()["name"] == name
    assert git.status_code == 429 and "retry-after" in git.headers  # git's Basic auth too
    with httpx.Client(base_url=server.url, headers=own_address(), timeout=30) as other:
        bad = other.get("/api/whoami-v2", headers={"Authorization": f"Bearer atr_{'z' * 40}"})
    assert bad.status_code == 401  # the limit is per address
