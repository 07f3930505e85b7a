"""The audit log (issue 10 §8): one user's security-relevant changes, made through the web pages,
the Hub API, git and the CLI, are read back by an admin through the API, the page and the CLI;
a refused change leaves no event, and nobody but an admin can read the log."""

from __future__ import annotations

import re
import secrets
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError

from tests.git.gitkit import Git, repo_url
from tests.live import LiveServer

PASSWORD = "audited password"


@dataclass
class Story:
    """What one user did, and the admin who reads about it."""

    owner: str
    repo_id: str
    moved_id: str
    commit_sha: str
    pushed_sha: str
    admin_token: str
    admin: httpx.Client
    owner_browser: httpx.Client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match[1]


def browser_of(server: LiveServer, name: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=30)
    form = {
        "username": name,
        "password": PASSWORD,
        "csrf_token": csrf_of(client.get("/login").text),
    }
    assert client.post("/login", data=form).status_code == 303
    return client


def post_form(browser: httpx.Client, page: str, action: str, **fields: str) -> httpx.Response:
    token = csrf_of(browser.get(page).text)
    return browser.post(action, data={**fields, "csrf_token": token})


@pytest.fixture(scope="module")
def story(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    owner, token = server.new_user(f"audited{secrets.token_hex(3)}", password=PASSWORD)
    _, admin_token = server.new_user(f"auditor{secrets.token_hex(3)}", admin=True)
    browser = browser_of(server, owner)
    # Web: a token made and revoked.
    made = post_form(browser, "/settings/tokens", "/settings/tokens", label="laptop", role="read")
    rows = [row for row in made.text.split("<tr>") if "Revoke laptop" in row]
    token_id = re.search(r"/settings/tokens/(\d+)/revoke", rows[0] if rows else "")
    assert made.status_code == 200 and token_id, made.text[-3000:]
    revoked = post_form(browser, "/settings/tokens", f"/settings/tokens/{token_id[1]}/revoke")
    assert revoked.status_code == 303
    # CLI: a token made by the operator.
    assert server.cli("tokens", "create", owner, "--label", "ci").returncode == 0
    # API: a repo, a commit, a refused commit, private; web: public again.
    api = HfApi(endpoint=server.url, token=token)
    repo_id = f"{owner}/audited"
    api.create_repo(repo_id)
    first = api.upload_file(path_or_fileobj=b"one", path_in_repo="a.txt", repo_id=repo_id)
    commit_sha = api.upload_file(path_or_fileobj=b"two", path_in_repo="a.txt", repo_id=repo_id).oid
    with pytest.raises(HfHubHTTPError):  # stale parent: 412, no event
        api.upload_file(
            path_or_fileobj=b"3", path_in_repo="a.txt", repo_id=repo_id, parent_commit=first.oid
        )
    api.update_repo_settings(repo_id, private=True)
    settings_page = f"/{repo_id}/settings"
    made_public = post_form(
        browser, settings_page, f"{settings_page}/visibility", visibility="public"
    )
    assert made_public.status_code == 303
    # git: a push.
    git = Git(tmp_path_factory.mktemp("audit-git"))
    work = git.clone(repo_url(server, repo_id, token), tmp_path_factory.mktemp("w") / "w")
    pushed_sha = git.commit_files(work, {"b.txt": "pushed"}, "push")
    git.run("push", cwd=work)
    # API: moved, then deleted.
    moved_id = f"{owner}/audited-moved"
    api.move_repo(repo_id, moved_id)
    api.delete_repo(moved_id)
    admin = httpx.Client(base_url=server.url, timeout=30)
    admin.headers["Authorization"] = f"Bearer {admin_token}"
    yield Story(owner, repo_id, moved_id, commit_sha, pushed_sha, admin_token, admin, browser)
    admin.close()
    browser.close()


def events(story: Story, **params: str) -> list[dict[str, Any]]:
    answer = story.admin.get("/api/admin/audit-log", params=params)
    assert answer.status_code == 200, answer.text
    rows: list[dict[str, Any]] = answer.json()
    return rows


def test_an_admin_reads_each_change_with_its_actor_target_and_channel(story: Story) -> None:
    rows = events(story, actor=story.owner)
    seen = [(r["action"], r["target"], r["details"]["via"]) for r in reversed(rows)]
    repo, owner = story.repo_id, story.owner
    assert seen == [
        ("token.create", owner, "web"),
        ("token.revoke", owner, "web"),
        ("repo.create", repo, "api"),
        ("repo.push", repo, "api"),
        ("repo.push", repo, "api"),  # the stale-parent commit that was refused is not here
        ("repo.visibility", repo, "api"),
        ("repo.visibility", repo, "web"),
        ("repo.push", repo, "git"),
        ("repo.move", repo, "api"),
        ("repo.delete", story.moved_id, "api"),
    ]
    assert {r["ip"] for r in rows} == {"127.0.0.1"}
    by_action = {(r["action"], r["details"]["via"]): r["details"] for r in rows}
    assert by_action[("token.create", "web")]["label"] == "laptop"
    assert by_action[("repo.visibility", "api")]["private"] is True
    assert by_action[("repo.visibility", "web")]["private"] is False
    assert by_action[("repo.move", "api")]["to"] == story.moved_id
    git_push = by_action[("repo.push", "git")]
    assert git_push["ref"] == "refs/heads/main" and git_push["new"] == story.pushed_sha
    api_pushes = [
        r["details"]
        for r in rows
        if r["action"] == "repo.push" and "git" not in r["details"]["via"]
    ]
    assert api_pushes[0]["new"] == story.commit_sha  # newest first: old -> new, chained
    assert api_pushes[0]["old"] == api_pushes[1]["new"] and api_pushes[1]["old"]


def test_operator_commands_are_logged_without_an_actor(story: Story) -> None:
    rows = events(story, repo=story.owner, action="token.create")
    assert [(r["actor"], r["details"]["via"], r["details"]["label"]) for r in rows] == [
        (None, "cli", "ci"),
        (story.owner, "web", "laptop"),
    ]


def test_pages_of_the_log_follow_the_link_to_older_events(story: Story) -> None:
    everything = [r["id"] for r in events(story, actor=story.owner)]
    url: str | None = f"/api/admin/audit-log?actor={story.owner}&limit=4"
    paged: list[int] = []
    while url:
        answer = story.admin.get(url)
        paged += [r["id"] for r in answer.json()]
        url = answer.links.get("next", {}).get("url")
    assert paged == everything and paged == sorted(paged, reverse=True)


def test_only_admins_read_the_log(server: LiveServer, story: Story) -> None:
    _, token = server.new_user()
    as_user = httpx.get(
        f"{server.url}/api/admin/audit-log", headers={"Authorization": f"Bearer {token}"}
    )
    assert as_user.status_code == 403
    assert httpx.get(f"{server.url}/api/admin/audit-log").status_code == 401
    page = story.owner_browser.get("/admin/audit")
    assert page.status_code == 404 and "Audit log" not in page.text  # no link in the header


def test_the_admin_page_and_the_cli_show_the_events(server: LiveServer, story: Story) -> None:
    name, _ = server.new_user(f"pageadmin{secrets.token_hex(3)}", admin=True, password=PASSWORD)
    with closing(browser_of(server, name)) as admin:
        page = admin.get("/admin/audit", params={"actor": story.owner})
    assert page.status_code == 200
    assert 'href="/admin/audit"' in page.text  # the header links it for admins
    for action in ("token.revoke", "repo.visibility", "repo.push", "repo.delete"):
        assert action in page.text
    assert story.moved_id in page.text
    shown = server.cli("audit", "--limit", "500", "--action", "repo.delete")
    assert shown.returncode == 0, shown.stderr
    line = next(line for line in shown.stdout.splitlines() if story.moved_id in line)
    assert f"{story.owner}  repo.delete  {story.moved_id}  127.0.0.1" in line


def test_a_user_made_from_the_cli_is_logged(server: LiveServer, story: Story) -> None:
    name = f"cliuser{secrets.token_hex(3)}"
    assert server.cli("users", "create", name).returncode == 0
    rows = events(story, repo=name)
    assert [(r["action"], r["actor"]) for r in reversed(rows)] == [
        ("user.create", None),
        ("token.create", None),
    ]
