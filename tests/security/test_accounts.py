"""Accounts, organizations and tokens as an operator manages them (issue 18): everything
through the `atrium` command on the live server's database, and its effect seen from outside
through huggingface_hub, git-style HTTP and the web sign-in, at once."""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, constants
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

from tests.git.gitkit import Git, repo_url
from tests.live import LiveServer
from tests.security.test_derived_credentials import xet_write

PASSWORD = "correct horse battery"


def atrium(server: LiveServer, *args: str, input: str | None = None) -> str:
    result = server.cli(*args, input=input)
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def refused(server: LiveServer, *args: str) -> str:
    result = server.cli(*args)
    assert result.returncode == 1, result.stdout
    assert "Traceback" not in result.stderr
    return result.stderr


def new_user(server: LiveServer, password: str | None = None) -> tuple[str, str]:
    """A user made with the README's command when it has a password; (name, token)."""
    name = f"acct{secrets.token_hex(3)}"
    if password is None:
        return server.new_user(name)
    out = atrium(server, "users", "create", name, "--password-stdin", input=password + "\n")
    return name, out.strip().splitlines()[-1]


def web_sign_in(server: LiveServer, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, follow_redirects=False)
    page = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    form = {"username": name, "password": password, "next": "/", "csrf_token": csrf.group(1)}
    answer = client.post("/login", data=form)
    assert answer.status_code == 303, answer.text
    return client


def signed_in_as(client: httpx.Client) -> str | None:
    answer = client.get("/api/whoami-v2")
    return answer.json()["name"] if answer.status_code == 200 else None


def test_org_roles_decide_reads_and_writes_and_removal_is_immediate(
    server: LiveServer, tmp_path: Path
) -> None:
    owner, owner_token = new_user(server)
    reader, reader_token = server.new_user(f"acct{secrets.token_hex(3)}", password=PASSWORD)
    writer, writer_token = new_user(server)
    outsider, outsider_token = server.new_user(f"acct{secrets.token_hex(3)}", password=PASSWORD)
    org = f"team{secrets.token_hex(3)}"
    atrium(server, "orgs", "create", org, "--owner", owner, "--fullname", "The Team")
    atrium(server, "orgs", "add-member", org, reader, "--role", "read")
    atrium(server, "orgs", "add-member", org, writer, "--role", "write")
    members = atrium(server, "orgs", "members", org)
    assert re.search(rf"{owner}\s+admin", members) and re.search(rf"{reader}\s+read", members)
    assert org in atrium(server, "orgs", "list")

    repo_id = f"{org}/secret-model"
    HfApi(endpoint=server.url, token=owner_token).create_repo(repo_id, private=True)
    HfApi(endpoint=server.url, token=writer_token).upload_file(
        path_or_fileobj=b"weights", path_in_repo="w.txt", repo_id=repo_id
    )
    reading = HfApi(endpoint=server.url, token=reader_token)
    assert reading.model_info(repo_id).id == repo_id
    roles = {o["name"]: o["roleInOrg"] for o in reading.whoami()["orgs"]}
    assert roles == {org: "read"}
    with pytest.raises(HfHubHTTPError) as denied:
        reading.upload_file(path_or_fileobj=b"x", path_in_repo="r.txt", repo_id=repo_id)
    assert denied.value.response.status_code == 403
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=server.url, token=outsider_token).model_info(repo_id)

    # The people API: counts are of what the caller may see; roles only for insiders.
    overview = reading.get_organization_overview(org)
    assert (overview.fullname, overview.num_users, overview.num_models) == ("The Team", 3, 1)
    assert (
        HfApi(endpoint=server.url, token=outsider_token).get_organization_overview(org).num_models
        == 0
    )
    members = {m.username: getattr(m, "role", None) for m in reading.list_organization_members(org)}
    assert members == {owner: "admin", reader: "read", writer: "write"}
    outside = HfApi(endpoint=server.url).list_organization_members(org)
    assert {getattr(m, "role", None) for m in outside} == {None}
    assert [o.name for o in reading.get_user_overview(reader).orgs] == [org]
    stored = {r.id: r for r in reading.list_user_repos(namespace=org)}  # `hf repos ls`
    assert stored[repo_id].visibility == "private" and stored[repo_id].storage >= len(b"weights")
    with pytest.raises(HfHubHTTPError) as listing:
        list(HfApi(endpoint=server.url, token=outsider_token).list_user_repos(namespace=org))
    assert listing.value.response.status_code == 403

    # git and the pages decide alike: the reader clones and browses, and cannot push.
    git = Git(tmp_path / "home")
    work = git.clone(repo_url(server, repo_id, reader_token), tmp_path / "clone")
    git.commit_files(work, {"by-reader.txt": "no\n"}, "reader push")
    assert git.run("push", "-q", "origin", "HEAD:main", cwd=work, check=False).returncode != 0
    writer_work = git.clone(repo_url(server, repo_id, writer_token), tmp_path / "writer")
    git.commit_files(writer_work, {"by-writer.txt": "yes\n"}, "writer push")
    git.run("push", "-q", "origin", "HEAD:main", cwd=writer_work)
    reader_browser = web_sign_in(server, reader, PASSWORD)
    assert reader_browser.get(f"/{repo_id}").status_code == 200
    assert web_sign_in(server, outsider, PASSWORD).get(f"/{repo_id}").status_code == 404

    # A role change and a removal take effect on the very next request.
    atrium(server, "orgs", "add-member", org, reader, "--role", "write")
    reading.upload_file(path_or_fileobj=b"now", path_in_repo="r.txt", repo_id=repo_id)
    atrium(server, "orgs", "remove-member", org, reader)
    with pytest.raises(RepositoryNotFoundError):
        reading.model_info(repo_id)
    assert reader_browser.get(f"/{repo_id}").status_code == 404
    fetch = git.run("fetch", "-q", "origin", cwd=work, check=False)
    assert fetch.returncode != 0, "a removed member still fetched the private repo"
    lfs = httpx.post(
        f"{server.url}/{repo_id}.git/info/lfs/objects/batch",
        auth=(reader, reader_token),
        headers={"Accept": "application/vnd.git-lfs+json"},
        json={"operation": "download", "objects": [{"oid": "0" * 64, "size": 1}]},
    )
    assert lfs.status_code == 404

    # A contributor creates repos and writes those, and only those.
    helper, helper_token = new_user(server)
    atrium(server, "orgs", "add-member", org, helper, "--role", "contributor")
    helping = HfApi(endpoint=server.url, token=helper_token)
    helping.create_repo(f"{org}/helper-model", private=True)
    helping.upload_file(
        path_or_fileobj=b"mine", path_in_repo="m.txt", repo_id=f"{org}/helper-model"
    )
    assert helping.model_info(repo_id).id == repo_id  # reads the org's private repos
    with pytest.raises(HfHubHTTPError) as theirs:
        helping.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=repo_id)
    assert theirs.value.response.status_code == 403
    assert "write only the repos they created" in theirs.value.response.text
    HfApi(endpoint=server.url, token=owner_token).delete_repo(f"{org}/helper-model")

    # The last admin stays, and an org that owns repos is not deleted.
    assert "last admin" in refused(server, "orgs", "remove-member", org, owner)
    assert "owns 1 repositories" in refused(server, "orgs", "delete", org)


def test_token_list_revoke_and_expiry(server: LiveServer) -> None:
    name, first = new_user(server)
    out = atrium(
        server, "tokens", "create", name, "--role", "read", "--label", "ci", "--expires", "30d"
    )
    assert "expiring" in out
    second = out.strip().splitlines()[-1]
    listing = atrium(server, "tokens", "list", name)
    assert first not in listing and second not in listing, "a secret was shown"
    assert f"…{second[-4:]}" in listing and "ci" in listing and "never" in listing
    token_id = re.search(r"^(\d+)\s+ci\s", listing, re.M)
    assert token_id

    api = HfApi(endpoint=server.url, token=second)
    assert api.whoami()["name"] == name
    row = re.search(rf"^{token_id.group(1)}\s.*$", atrium(server, "tokens", "list", name), re.M)
    assert row and "never" not in row.group(0), "the use was not recorded"
    atrium(server, "tokens", "revoke", token_id.group(1))
    with pytest.raises(HfHubHTTPError) as gone:
        api.whoami()
    assert gone.value.response.status_code == 401
    assert "no active token" in refused(server, "tokens", "revoke", token_id.group(1))

    # An expired token says so.
    out = atrium(server, "tokens", "create", name, "--expires", "1h")
    short = out.strip().splitlines()[-1]
    from sqlalchemy import update

    from app.auth.models import Token
    from app.auth.service import hash_token
    from app.db.base import utcnow
    from app.db.engine import write_transaction

    with write_transaction(server.app().state.sessionmaker) as session:  # an hour passes
        session.execute(
            update(Token).where(Token.digest == hash_token(short)).values(expires_at=utcnow())
        )
    answer = httpx.get(f"{server.url}/api/whoami-v2", headers={"Authorization": f"Bearer {short}"})
    assert answer.status_code == 401 and "This token expired on" in answer.json()["error"]
    assert "(expired)" in atrium(server, "tokens", "list", name)
    assert "invalid duration" in refused(server, "tokens", "create", name, "--expires", "soon")


def test_the_readme_admin_signs_in_and_a_disabled_user_is_locked_out(server: LiveServer) -> None:
    name, token = new_user(server, password=PASSWORD)
    browser = web_sign_in(server, name, PASSWORD)
    assert signed_in_as(browser) == name
    listing = atrium(server, "users", "list")
    assert re.search(rf"^{name}\s+password", listing, re.M)

    repo_id = f"{name}/mine"
    HfApi(endpoint=server.url, token=token).create_repo(repo_id)
    xet = xet_write(server, repo_id, token)
    assert xet.dedup().status_code in (200, 404)  # the Xet token works: a chunk is known or not

    atrium(server, "users", "disable", name)
    assert signed_in_as(browser) is None, "the session outlived the disabling"
    assert xet.dedup().status_code == 401, "a Xet token outlived the disabling"
    answer = httpx.get(f"{server.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401 and "disabled" in answer.json()["error"]
    assert "disabled" in atrium(server, "users", "list")
    client = httpx.Client(base_url=server.url)
    page = client.get("/login").text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert csrf
    form = {"username": name, "password": PASSWORD, "next": "/", "csrf_token": csrf.group(1)}
    assert client.post("/login", data=form).status_code != 303

    atrium(server, "users", "enable", name)
    assert HfApi(endpoint=server.url, token=token).whoami()["name"] == name

    atrium(server, "users", "set-password", name, input="a much better secret\n")
    assert signed_in_as(web_sign_in(server, name, "a much better secret")) == name
    assert "too short" in server.cli("users", "set-password", name, input="short\n").stderr


def test_promote_demote_and_delete_with_transfer(server: LiveServer) -> None:
    name, token = new_user(server)
    heir, _ = new_user(server)
    atrium(server, "users", "promote", heir)
    atrium(server, "users", "promote", name)
    assert "admin" in re.search(rf"^{name}\s.*$", atrium(server, "users", "list"), re.M).group(0)  # type: ignore[union-attr]
    atrium(server, "users", "demote", name)

    api = HfApi(endpoint=server.url, token=token)
    api.create_repo(f"{name}/kept", private=True)
    api.upload_file(path_or_fileobj=b"kept", path_in_repo="k.txt", repo_id=f"{name}/kept")
    assert "owns 1 repositories" in refused(server, "users", "delete", name)
    atrium(server, "users", "delete", name, "--transfer-to", heir)
    answer = httpx.get(f"{server.url}/api/whoami-v2", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert name not in atrium(server, "users", "list")
    heir_token = atrium(server, "tokens", "create", heir).strip().splitlines()[-1]
    moved = HfApi(endpoint=server.url, token=heir_token)
    assert moved.model_info(f"{heir}/kept").id == f"{heir}/kept"
    got = httpx.get(
        f"{server.url}/{heir}/kept/resolve/main/k.txt",
        headers={"Authorization": f"Bearer {heir_token}"},
        follow_redirects=True,
    )
    assert got.content == b"kept"


def test_org_pages_create_manage_members_and_show_them(server: LiveServer) -> None:
    from tests.web.test_pages_http import csrf_of, signed_in

    admin = signed_in(server)
    member = signed_in(server)
    org = f"web{secrets.token_hex(3)}"
    page = admin.client.get("/organizations/new")
    assert page.status_code == 200 and "Create an organization" in page.text
    made = admin.client.post(
        "/organizations/new",
        data={"name": org, "fullname": "Web Team", "csrf_token": csrf_of(page.text)},
    )
    assert made.status_code == 303 and made.headers["location"] == f"/organizations/{org}/settings"
    settings = admin.client.get(f"/organizations/{org}/settings")
    assert settings.status_code == 200 and admin.name in settings.text
    added = admin.client.post(
        f"/organizations/{org}/settings/members",
        data={"user": member.name, "role": "read", "csrf_token": csrf_of(settings.text)},
    )
    assert added.status_code == 303
    assert re.search(rf"{member.name}\s+read", atrium(server, "orgs", "members", org))

    # The member sees the org on their profile and among the new-repo owners only once
    # they may write; its settings are not theirs.
    profile = member.client.get(f"/{member.name}").text
    assert f'href="/{org}"' in profile
    assert f'value="{org}"' not in member.client.get("/new").text
    assert member.client.get(f"/organizations/{org}/settings").status_code == 403
    settings = admin.client.get(f"/organizations/{org}/settings")
    admin.client.post(
        f"/organizations/{org}/settings/members",
        data={"user": member.name, "role": "write", "csrf_token": csrf_of(settings.text)},
    )
    assert f'value="{org}"' in member.client.get("/new").text
    org_page = httpx.get(f"{server.url}/{org}").text
    assert "Web Team" in org_page and member.name in org_page
    assert ">write<" not in org_page, "roles shown to an anonymous visitor"

    # A wrong name is an error on the page; removal and deletion work from it.
    settings = admin.client.get(f"/organizations/{org}/settings")
    wrong = admin.client.post(
        f"/organizations/{org}/settings/members",
        data={"user": "nobody-here", "role": "read", "csrf_token": csrf_of(settings.text)},
    )
    assert wrong.status_code == 200 and "not found" in wrong.text
    admin.client.post(
        f"/organizations/{org}/settings/members/{member.name}/remove",
        data={"csrf_token": csrf_of(settings.text)},
    )
    assert member.name not in atrium(server, "orgs", "members", org)
    gone = admin.client.post(
        f"/organizations/{org}/settings/delete", data={"csrf_token": csrf_of(settings.text)}
    )
    assert gone.status_code == 303
    assert httpx.get(f"{server.url}/{org}").status_code == 404


def test_a_fine_grained_token_writes_its_one_repo_and_nothing_else(
    server: LiveServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)  # the default client: Xet
    name, full = new_user(server)
    owner = HfApi(endpoint=server.url, token=full)
    for repo in ("granted", "other"):
        owner.create_repo(f"{name}/{repo}", private=True)
    out = atrium(server, "tokens", "create", name, "--scope", f"{name}/granted=write")
    assert "fine-grained" in out
    narrow = out.strip().splitlines()[-1]
    assert f"fineGrained {name}/granted=write" in atrium(server, "tokens", "list", name)
    api = HfApi(endpoint=server.url, token=narrow)

    access = api.whoami()["auth"]["accessToken"]
    assert access["role"] == "fineGrained"
    assert access["fineGrained"]["scoped"] == [
        {
            "entity": {"type": "model", "name": f"{name}/granted"},
            "permissions": ["repo.content.read", "discussion.write", "repo.write"],
        }
    ]

    # Its one repo: through Xet (the default), LFS, and git push.
    api.upload_file(
        path_or_fileobj=os.urandom(80_000), path_in_repo="w.bin", repo_id=f"{name}/granted"
    )
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    api.upload_file(
        path_or_fileobj=os.urandom(80_000), path_in_repo="l.bin", repo_id=f"{name}/granted"
    )
    git = Git(tmp_path / "home")
    work = git.clone(repo_url(server, f"{name}/granted", narrow), tmp_path / "granted")
    git.commit_files(work, {"notes.txt": "by git\n"}, "git push")
    git.run("push", "-q", "origin", "HEAD:main", cwd=work)
    files = set(owner.list_repo_files(f"{name}/granted"))
    assert {"w.bin", "l.bin", "notes.txt"} <= files

    # Nothing else: another private repo of the same user is invisible, not writable (API,
    # git), and no new repo can be made.
    with pytest.raises(RepositoryNotFoundError):
        api.model_info(f"{name}/other")
    with pytest.raises(RepositoryNotFoundError):
        api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"{name}/other")
    denied = git.run(
        "clone", repo_url(server, f"{name}/other", narrow), str(tmp_path / "o"), check=False
    )
    assert denied.returncode != 0
    with pytest.raises(HfHubHTTPError) as create:
        api.create_repo(f"{name}/new-one")
    assert create.value.response.status_code == 403
    assert "fine-grained token has no write permission" in create.value.response.text
    listed = {m.id for m in api.list_models(author=name)}
    assert listed == set(), "a fine-grained token listed private repos it does not name"
    # A read scope reads and does not write.
    reader = atrium(server, "tokens", "create", name, "--scope", f"{name}=read").strip()
    reading = HfApi(endpoint=server.url, token=reader.splitlines()[-1])
    assert reading.model_info(f"{name}/other").id == f"{name}/other"
    with pytest.raises(HfHubHTTPError) as write:
        reading.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=f"{name}/other")
    assert write.value.response.status_code == 403
    assert "invalid scope" in refused(server, "tokens", "create", name, "--scope", "nope")


def test_web_password_change_and_the_admins_users_page(server: LiveServer) -> None:
    from tests.web.test_pages_http import csrf_of

    name, _ = new_user(server, password=PASSWORD)
    other = web_sign_in(server, name, PASSWORD)
    browser = web_sign_in(server, name, PASSWORD)
    form = browser.get("/settings/password").text
    short = browser.post(
        "/settings/password",
        data={"current": PASSWORD, "new": "short", "again": "short", "csrf_token": csrf_of(form)},
    )
    assert short.status_code == 400 and "too short" in short.text
    wrong = browser.post(
        "/settings/password",
        data={"current": "nope", "new": "x" * 12, "again": "x" * 12, "csrf_token": csrf_of(form)},
    )
    assert wrong.status_code == 400 and "current password is wrong" in wrong.text
    done = browser.post(
        "/settings/password",
        data={"current": PASSWORD, "new": "x" * 12, "again": "x" * 12, "csrf_token": csrf_of(form)},
    )
    assert done.status_code == 200 and "was changed" in done.text
    assert signed_in_as(browser) == name, "the browser that changed it stays signed in"
    assert signed_in_as(other) is None, "another browser kept its session"
    assert signed_in_as(web_sign_in(server, name, "x" * 12)) == name

    # The users page: for admins only; its buttons do what `atrium users` does.
    assert browser.get("/admin/users").status_code == 404
    admin, _ = new_user(server, password=PASSWORD)
    atrium(server, "users", "promote", admin)
    boss = web_sign_in(server, admin, PASSWORD)
    page = boss.get("/admin/users")
    assert page.status_code == 200 and name in page.text
    boss.post(f"/admin/users/{name}/disable", data={"csrf_token": csrf_of(page.text)})
    assert signed_in_as(browser) is None
    assert re.search(rf"^{name}\s.*disabled", atrium(server, "users", "list"), re.M)
    boss.post(f"/admin/users/{name}/enable", data={"csrf_token": csrf_of(page.text)})
    assert "disabled" not in re.search(
        rf"^{name}\s.*$", atrium(server, "users", "list"), re.M
    ).group(0)  # type: ignore[union-attr]


def test_the_organization_api_for_site_admins_and_org_admins(server: LiveServer) -> None:
    _, admin_token = server.new_user(admin=True)
    owner, owner_token = new_user(server)
    member, member_token = new_user(server)
    org = f"api{secrets.token_hex(3)}"

    def call(method: str, path: str, token: str, **kw: object) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.request(method, server.url + path, headers=headers, **kw)  # type: ignore[arg-type]

    body = {"name": org, "owner": owner, "fullname": "API Team"}
    assert call("POST", "/api/admin/organizations", owner_token, json=body).status_code == 403
    made = call("POST", "/api/admin/organizations", admin_token, json=body)
    assert made.status_code == 201, made.text
    assert made.json()["members"] == [{"user": owner, "role": "admin"}]
    again = call("POST", "/api/admin/organizations", admin_token, json=body)
    assert again.status_code == 409

    path = f"/api/organizations/{org}/members/{member}"
    assert call("PUT", path, member_token, json={"role": "admin"}).status_code == 403
    assert call("PUT", path, owner_token, json={"role": "write"}).json()["role"] == "write"
    assert call("PUT", path, owner_token, json={"role": "boss"}).status_code == 400
    roles = {
        o["name"]: o["roleInOrg"]
        for o in HfApi(endpoint=server.url, token=member_token).whoami()["orgs"]
    }
    assert roles == {org: "write"}
    assert call("DELETE", path, owner_token).status_code == 200
    assert call("DELETE", path, owner_token).status_code == 404
    assert HfApi(endpoint=server.url, token=member_token).whoami()["orgs"] == []


def test_the_tokens_page_makes_fine_grained_tokens(server: LiveServer) -> None:
    from tests.web.test_pages_http import csrf_of

    name, _ = new_user(server, password=PASSWORD)
    browser = web_sign_in(server, name, PASSWORD)
    page = browser.get("/settings/tokens").text
    form = {"label": "narrow", "role": "fineGrained", "csrf_token": csrf_of(page)}
    empty = browser.post("/settings/tokens", data={**form, "scopes": ""})
    assert "needs at least one scope" in empty.text
    bad = browser.post("/settings/tokens", data={**form, "scopes": "nonsense"})
    assert "invalid scope" in bad.text
    made = browser.post("/settings/tokens", data={**form, "scopes": f"{name}/one=write\n"})
    secret = re.search(r'id="token-secret">([^<]+)<', made.text)
    assert secret, made.text[-2000:]
    access = HfApi(endpoint=server.url, token=secret.group(1)).whoami()["auth"]["accessToken"]
    assert access["role"] == "fineGrained"
    assert access["fineGrained"]["scoped"][0]["entity"]["name"] == f"{name}/one"
    assert f"{name}/one=write" in browser.get("/settings/tokens").text
