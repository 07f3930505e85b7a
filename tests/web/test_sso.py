"""Single sign-on (issue 18) against a real OpenID provider on loopback: the certified
`oidc-provider` package run with node (tests/oidc/, installed by .ci/run), driven in headless
Chromium. The first sign-in makes the account, a groups claim makes it an org member, the
same identity signs in to the same account again; an ID token for another audience or
tampered with is refused, and so is a callback that did not start here. This hub has
password sign-in switched off."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from app.auth import oidc
from app.config import Settings
from app.errors import Unauthorized
from tests.live import Backend, LiveServer, free_port, start_server, wait_http

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "oidc"
SECRET = "sso-client-secret"
PROBE_SECRET = "probe-secret"


@dataclass
class Provider:
    issuer: str
    proc: subprocess.Popen[bytes]
    probe_redirect: str


@dataclass
class Sso:
    server: LiveServer
    provider: Provider
    org: str
    login: str  # the provider account that is in the org's group


def _provider(port: int, callback: str, groups: dict[str, list[str]]) -> Provider:
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail("tests/oidc/node_modules is missing; .ci/run installs it (npm ci)")
        pytest.skip("the OpenID provider is not installed: npm ci --prefix tests/oidc")
    probe_redirect = f"http://127.0.0.1:{free_port()}/cb"
    clients = [
        {"client_id": "atrium", "client_secret": SECRET, "redirect_uris": [callback]},
        {"client_id": "probe", "client_secret": PROBE_SECRET, "redirect_uris": [probe_redirect]},
    ]
    env = {
        **os.environ,
        "PORT": str(port),
        "OIDC_CLIENTS": json.dumps(clients),
        "OIDC_GROUPS": json.dumps(groups),
    }
    proc = subprocess.Popen(
        ["node", "provider.mjs"],
        cwd=PROVIDER_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    issuer = f"http://127.0.0.1:{port}"
    wait_http(issuer + "/.well-known/openid-configuration", proc)
    return Provider(issuer, proc, probe_redirect)


@pytest.fixture(scope="module")
def sso(backend: Backend) -> Iterator[Sso]:
    port = free_port()
    org, login = f"sso{secrets.token_hex(3)}", f"carol{secrets.token_hex(3)}"
    live = start_server(
        backend,
        extra_env={
            "ATRIUM_OIDC_ISSUER": f"http://127.0.0.1:{port}",
            "ATRIUM_OIDC_CLIENT_ID": "atrium",
            "ATRIUM_OIDC_CLIENT_SECRET": SECRET,
            "ATRIUM_OIDC_GROUPS_CLAIM": "groups",
            "ATRIUM_OIDC_BUTTON": "Sign in with Test SSO",
            "ATRIUM_PASSWORD_LOGIN": "false",
        },
    )
    provider = None
    try:
        owner, _ = live.new_user()
        assert live.cli("orgs", "create", org, "--owner", owner).returncode == 0
        callback = f"{live.url}/login/sso/callback"
        provider = _provider(port, callback, {login: [f"{org}:write", "not-an-org:admin"]})
        yield Sso(live, provider, org, login)
    finally:
        if provider is not None:
            provider.proc.terminate()
            provider.proc.wait(10)
        live.stop()


def provider_sign_in(driver: WebDriver, login: str) -> None:
    """The provider's own pages: its login form (any password), then its consent."""
    wait = WebDriverWait(driver, 20)
    field = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[name=login]"))[0]
    field.send_keys(login)
    driver.find_element(By.CSS_SELECTOR, "input[name=password]").send_keys("anything")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    consent = wait.until(
        lambda d: (
            d.find_elements(By.CSS_SELECTOR, "button[type=submit]")
            if "/interaction/" in d.current_url
            else None
        )
    )
    consent[0].click()


def atrium_sign_in(driver: WebDriver, sso: Sso, login: str) -> None:
    driver.delete_all_cookies()
    driver.get(sso.server.url + "/login?next=/models")
    button = driver.find_element(By.ID, "sso")
    assert button.text == "Sign in with Test SSO"
    button.click()
    provider_sign_in(driver, login)
    WebDriverWait(driver, 20).until(lambda d: d.current_url == sso.server.url + "/models")


def test_first_sign_in_makes_the_account_and_its_org_membership(
    sso: Sso, driver: WebDriver
) -> None:
    # Passwords are off: the page offers only single sign-on, and a posted form is refused.
    page = httpx.get(sso.server.url + "/login").text
    assert 'id="sso"' in page and 'name="password"' not in page

    atrium_sign_in(driver, sso, sso.login)
    assert driver.find_element(By.CSS_SELECTOR, ".me").text == sso.login
    listing = sso.server.cli("users", "list").stdout
    assert re.search(rf"^{sso.login}\s", listing, re.M)
    members = sso.server.cli("orgs", "members", sso.org).stdout
    assert re.search(rf"{sso.login}\s+write", members), members

    # The same identity again: the same account, not a second one.
    atrium_sign_in(driver, sso, sso.login)
    assert sso.server.cli("users", "list").stdout.count(sso.login) == 1


def test_a_callback_that_did_not_start_here_is_refused(sso: Sso) -> None:
    answer = httpx.get(
        sso.server.url + "/login/sso/callback", params={"code": "forged", "state": "forged"}
    )
    assert answer.status_code == 401
    assert "did not start here" in answer.text
    assert 'class="me"' not in answer.text, "signed in by a forged callback"


def test_password_sign_in_is_switched_off(sso: Sso) -> None:
    client = httpx.Client(base_url=sso.server.url)
    csrf = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text)
    assert csrf
    name, _ = sso.server.new_user(password="a password long enough")
    form = {"username": name, "password": "a password long enough", "csrf_token": csrf.group(1)}
    refused = client.post("/login", data=form)
    assert refused.status_code == 403 and "switched off" in refused.text


def _probe_id_token(driver: WebDriver, sso: Sso) -> tuple[str, str]:
    """A genuine ID token the provider issued to the other client ("probe"), and its nonce."""
    nonce = secrets.token_urlsafe(12)
    query = {
        "response_type": "code",
        "client_id": "probe",
        "redirect_uri": sso.provider.probe_redirect,
        "scope": "openid profile",
        "state": "s",
        "nonce": nonce,
    }
    driver.delete_all_cookies()
    driver.get(f"{sso.provider.issuer}/auth?{urlencode(query)}")
    provider_sign_in(driver, "dave")
    WebDriverWait(driver, 20).until(lambda d: d.current_url.startswith(sso.provider.probe_redirect))
    code = parse_qs(urlsplit(driver.current_url).query)["code"][0]
    tokens = httpx.post(
        f"{sso.provider.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": query["redirect_uri"],
        },
        auth=("probe", PROBE_SECRET),
    ).json()
    return tokens["id_token"], nonce


def test_an_id_token_for_another_audience_or_tampered_with_is_refused(
    sso: Sso, driver: WebDriver
) -> None:
    token, nonce = _probe_id_token(driver, sso)
    ours = Settings(oidc_issuer=sso.provider.issuer, oidc_client_id="atrium")
    theirs = Settings(oidc_issuer=sso.provider.issuer, oidc_client_id="probe")
    assert oidc.verify_id_token(theirs, token, nonce=nonce)["sub"] == "dave"
    with pytest.raises(Unauthorized, match="aud"):
        oidc.verify_id_token(ours, token, nonce=nonce)
    with pytest.raises(Unauthorized):
        oidc.verify_id_token(theirs, token, nonce="another nonce")
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "admin"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    with pytest.raises(Unauthorized, match="signature"):
        oidc.verify_id_token(theirs, f"{head}.{forged}.{signature}", nonce=nonce)
