"""Authorization matrix (issue 10 §4): every route x caller x visibility answers exactly the
expected status. A private repo is 404 to whoever may not read it (API, downloads, LFS, git
with credentials, pages), never 403, so its existence does not leak; only anonymous git and
git-lfs get a 401 challenge, without which they would never send credentials. Bad
credentials (malformed, unknown, revoked, wrong scheme) are 401 everywhere."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.live import LiveServer
from tests.reliability.authz_world import (
    CALLERS,
    WEIGHTS,
    WEIGHTS_OID,
    World,
    build_world,
    ndjson_commit,
    sign_in,
)
from tests.reliability.figures import AUTH, REFUSED, record

HIDDEN = {"anonymous", "outsider"}  # who may not see the private repo
WRITERS = {"writer", "owner", "admin"}


def api_read(caller: str, visibility: str) -> int:
    return 404 if visibility == "private" and caller in HIDDEN else 200


def api_write(caller: str, visibility: str) -> int:
    if visibility == "private" and caller in HIDDEN:
        return 404
    if caller == "anonymous":
        return 401
    return 200 if caller in WRITERS else 403


def participate(caller: str, visibility: str) -> int:
    """Discussions, and the objects of a pull request's commits (issue 20): whoever may read
    the repo with a token that may write; the commit that moves a ref is checked on its own."""
    if visibility == "private" and caller in HIDDEN:
        return 404
    if caller == "anonymous":
        return 401
    return 403 if caller == "owner_read_token" else 200


def challenged_participate(caller: str, visibility: str) -> int:
    return 401 if caller == "anonymous" else participate(caller, visibility)


def inference(caller: str, visibility: str) -> int:
    """Whoever may read the repo may run it; this repo holds no model, which readers learn."""
    return 404 if visibility == "private" and caller in HIDDEN else 400


def challenged_read(caller: str, visibility: str) -> int:
    """git and git-lfs: anonymous gets 401 to make the client send credentials."""
    if visibility == "private" and caller == "anonymous":
        return 401
    return api_read(caller, visibility)


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str  # {id} and {sha} are filled in
    expect: Callable[[str, str], int]
    basic: bool = False  # send the token as git does
    page: bool = False  # a browser page: the caller signs in, pages take no tokens
    options: Callable[[], dict[str, Any]] = field(default=lambda: {})


def lfs_batch(operation: str) -> Callable[[], dict[str, Any]]:
    def body() -> dict[str, Any]:
        objects = [{"oid": WEIGHTS_OID, "size": len(WEIGHTS)}]
        payload = {"operation": operation, "transfers": ["basic"], "objects": objects}
        return {"json": payload, "headers": {"Accept": "application/vnd.git-lfs+json"}}

    return body


ROUTES = [
    Route("info", "GET", "/api/models/{id}", api_read),
    Route("revision info", "GET", "/api/models/{id}/revision/main", api_read),
    Route("tree", "GET", "/api/models/{id}/tree/main", api_read),
    Route("tree at sha", "GET", "/api/models/{id}/tree/{sha}", api_read),
    Route(
        "paths-info",
        "POST",
        "/api/models/{id}/paths-info/main",
        api_read,
        options=lambda: {"data": {"paths": ["README.md", "w.bin"]}},
    ),
    Route("commits", "GET", "/api/models/{id}/commits/main", api_read),
    Route("refs", "GET", "/api/models/{id}/refs", api_read),
    Route("resolve", "GET", "/{id}/resolve/main/README.md", api_read),
    Route("resolve lfs", "GET", "/{id}/resolve/main/w.bin", api_read),
    Route("resolve at sha", "GET", "/{id}/resolve/{sha}/README.md", api_read),
    Route("resolve head", "HEAD", "/{id}/resolve/main/w.bin", api_read),
    Route("raw", "GET", "/{id}/raw/main/w.bin", api_read),
    Route("xet read token", "GET", "/api/models/{id}/xet-read-token/main", api_read),
    Route("card page", "GET", "/{id}", api_read, page=True),
    Route("tree page", "GET", "/{id}/tree/main", api_read, page=True),
    Route("blob page", "GET", "/{id}/blob/main/README.md", api_read, page=True),
    Route("history page", "GET", "/{id}/commits/main", api_read, page=True),
    Route(
        "lfs download",
        "POST",
        "/{id}.git/info/lfs/objects/batch",
        challenged_read,
        basic=True,
        options=lfs_batch("download"),
    ),
    Route(
        "git fetch refs",
        "GET",
        "/{id}.git/info/refs?service=git-upload-pack",
        challenged_read,
        basic=True,
    ),
    Route(
        "commit",
        "POST",
        "/api/models/{id}/commit/main",
        api_write,
        options=lambda: {
            "content": ndjson_commit(f"probe-{secrets.token_hex(4)}.txt"),
            "headers": {"Content-Type": "application/x-ndjson"},
        },
    ),
    Route(
        "preupload",
        "POST",
        "/api/models/{id}/preupload/main",
        participate,
        options=lambda: {"json": {"files": [{"path": "a.txt", "size": 5, "sample": "cHJvYmU="}]}},
    ),
    Route("create branch", "POST", "/api/models/{id}/branch/b-{rand}", api_write),
    Route(
        "create tag",
        "POST",
        "/api/models/{id}/tag/main",
        api_write,
        options=lambda: {"json": {"tag": f"t-{secrets.token_hex(4)}"}},
    ),
    Route(
        "settings",
        "PUT",
        "/api/models/{id}/settings",
        api_write,
        options=lambda: {"json": {"gated": False}},
    ),
    Route(
        "inference", "POST", "/models/{id}", inference, options=lambda: {"json": {"inputs": "hi"}}
    ),
    Route(
        "inference task",
        "POST",
        "/models/{id}/pipeline/feature-extraction",
        inference,
        options=lambda: {"json": {"inputs": "hi"}},
    ),
    Route(
        "openai chat",
        "POST",
        "/models/{id}/v1/chat/completions",
        inference,
        options=lambda: {"json": {"messages": [{"role": "user", "content": "hi"}]}},
    ),
    Route("xet write token", "GET", "/api/models/{id}/xet-write-token/main", participate),
    Route(
        "lfs upload",
        "POST",
        "/{id}.git/info/lfs/objects/batch",
        challenged_participate,
        basic=True,
        options=lfs_batch("upload"),
    ),
    Route(
        "git push refs",
        "GET",
        "/{id}.git/info/refs?service=git-receive-pack",
        challenged_participate,  # each pushed ref is checked: outsiders only their own PRs
        basic=True,
    ),
    Route("discussions", "GET", "/api/models/{id}/discussions", api_read),
    Route("auth check", "GET", "/api/models/{id}/auth-check", api_read),
    Route(
        "open discussion",
        "POST",
        "/api/models/{id}/discussions",
        participate,
        options=lambda: {"json": {"title": f"probe {secrets.token_hex(3)}"}},
    ),
]


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    return build_world(server)


@pytest.fixture(scope="module")
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def browsers(server: LiveServer, world: World) -> Iterator[dict[str, httpx.Client]]:
    """A signed-in browser session per caller (anonymous: none)."""
    sessions = {caller: httpx.Client(base_url=server.url, timeout=30) for caller in CALLERS}
    for caller, user in world.users.items():
        sign_in(sessions[caller], user)
    yield sessions
    for session in sessions.values():
        session.close()


def call(client: httpx.Client, world: World, route: Route, caller: str, vis: str) -> httpx.Response:
    path = route.path.format(id=world.repo_id(vis), sha=world.shas[vis], rand=secrets.token_hex(4))
    options = route.options()
    credentials = world.basic(caller) if route.basic else world.headers(caller)
    headers = {**options.pop("headers", {}), **({} if route.page else credentials)}
    return client.request(route.method, path, headers=headers, **options)


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_every_caller_gets_exactly_the_expected_status(
    client: httpx.Client, browsers: dict[str, httpx.Client], world: World, route: Route
) -> None:
    wrong = []
    for visibility in ("public", "private"):
        for caller in CALLERS:
            http = browsers[caller] if route.page else client
            response = call(http, world, route, caller, visibility)
            expected = route.expect(caller, visibility)
            if response.status_code != expected:
                wrong.append(f"{caller}/{visibility}: {response.status_code} != {expected}")
            elif expected == 404 and "json" in response.headers.get("content-type", ""):
                assert response.headers.get("X-Error-Code") == "RepoNotFound", response.text
            record(AUTH)
    assert not wrong, wrong


def admins_only(caller: str) -> int:
    return 401 if caller == "anonymous" else 200 if caller == "admin" else 403


def members_and_admins(caller: str) -> int:
    if caller == "anonymous":
        return 401
    return 403 if caller == "outsider" else 200


SITE_ROUTES = [  # not about one repo: the caller alone decides
    ("audit log", "GET", "/api/admin/audit-log", admins_only, {}),
    ("inference workers", "GET", "/api/inference/status", admins_only, {}),
    ("set quota", "PUT", "/api/admin/quotas/{org}", admins_only, {"json": {"limit": None}}),
    ("show quota", "GET", "/api/quotas/{org}", members_and_admins, {}),
]


@pytest.mark.parametrize("route", SITE_ROUTES, ids=lambda r: r[0])
def test_site_routes_answer_each_caller_as_expected(
    client: httpx.Client, world: World, route: tuple[str, str, str, Callable[[str], int], Any]
) -> None:
    _name, method, path, expect, options = route
    wrong = []
    for caller in CALLERS:
        response = client.request(
            method, path.format(org=world.org), headers=world.headers(caller), **options
        )
        if response.status_code != expect(caller):
            wrong.append(f"{caller}: {response.status_code} != {expect(caller)}")
        record(AUTH)
    assert not wrong, wrong


def test_a_hidden_repo_answers_like_a_missing_one(client: httpx.Client, world: World) -> None:
    """Same status, error code and message shape: nothing tells private from absent."""
    missing = f"{world.org}/no-such-repo"
    for route in ROUTES:
        if route.expect("outsider", "private") != 404:
            continue
        hidden = call(client, world, route, "outsider", "private")
        path = route.path.format(id=missing, sha=world.shas["private"], rand="x")
        options = route.options()
        headers = {**options.pop("headers", {}), **world.headers("outsider")}
        absent = client.request(route.method, path, headers=headers, **options)
        assert (hidden.status_code, hidden.headers.get("X-Error-Code")) == (
            absent.status_code,
            absent.headers.get("X-Error-Code"),
        ), route.name
        if "json" in hidden.headers.get("content-type", ""):
            shown = hidden.json()["error"].replace(world.repo_id("private"), missing)
            assert shown == absent.json()["error"], route.name
        record(AUTH)


BAD_CREDENTIALS = {
    "malformed bearer": "Bearer not-a-token",
    "unknown token": "Bearer atr_" + "A" * 40,
    "wrong scheme": "Token atr_" + "A" * 40,
    "bad basic": "Basic !!!not-base64!!!",
    "basic unknown": "Basic eDphdHJfQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB",
    "overlong": "Bearer " + "x" * 20_000,
}


@pytest.mark.parametrize(
    "route",
    [r for r in ROUTES if r.name in {"info", "resolve", "commit", "lfs download"}],
    ids=lambda r: r.name,
)
def test_bad_or_revoked_credentials_are_refused_with_401(
    client: httpx.Client, world: World, route: Route
) -> None:
    credentials = {**BAD_CREDENTIALS, "revoked token": f"Bearer {world.revoked}"}
    for name, header in credentials.items():
        path = route.path.format(id=world.repo_id("public"), sha=world.shas["public"], rand="x")
        options = route.options()
        headers = {**options.pop("headers", {}), "Authorization": header}
        response = client.request(route.method, path, headers=headers, **options)
        assert response.status_code == 401, (name, response.status_code, response.text[:200])
        record(REFUSED)
    whoami = client.get("/api/whoami-v2", headers={"Authorization": f"Bearer {world.revoked}"})
    assert whoami.status_code == 401


def csrf_of(browser: httpx.Client) -> str:
    page = browser.get("/").text
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_a_form_post_without_its_own_csrf_token_changes_nothing(
    client: httpx.Client, browsers: dict[str, httpx.Client], world: World
) -> None:
    """Cross-site forms carry the cookie but not the token: no token, a forged one or the
    token of another session are all refused, and the private repo stays private."""
    owner, outsider = browsers["owner"], browsers["outsider"]
    target = f"/{world.repo_id('private')}/settings/visibility"
    for token in (None, "forged-token", csrf_of(outsider)):
        data = {"visibility": "public", **({"csrf_token": token} if token else {})}
        answer = owner.post(target, data=data)
        assert answer.status_code in (400, 403), (token, answer.status_code)
        record(REFUSED)
    mine = {"visibility": "public", "csrf_token": csrf_of(outsider)}
    assert outsider.post(target, data=mine).status_code == 404
    hidden = client.get(
        f"/api/models/{world.repo_id('private')}", headers=world.headers("outsider")
    )
    assert hidden.status_code == 404
