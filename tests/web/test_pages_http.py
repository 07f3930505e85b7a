"""The pages over plain HTTP: sessions, CSRF, security headers, privacy, and what the file
pages show for each kind of file. Repos are written in-process (tests/hub/readkit.py)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.web.session import COOKIE_NAME
from tests.hub.readkit import Owner, add_ref, make_repo
from tests.live import LiveServer

DATASET_CARD = b"""---
license: cc-by-4.0
task_categories: [tabular-classification]
size_categories: [n<1K]
---
# Rows
"""
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)


@dataclass
class Person:
    owner: Owner
    password: str
    client: httpx.Client

    @property
    def name(self) -> str:
        return self.owner.name


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


def signed_in(server: LiveServer) -> Person:
    password = secrets.token_urlsafe(10)
    name, token = server.new_user(f"http{secrets.token_hex(3)}", password=password)
    client = httpx.Client(base_url=server.url, follow_redirects=False)
    form = {"username": name, "password": password, "next": "/"}
    answer = client.post("/login", data={**form, "csrf_token": csrf_of(client.get("/login").text)})
    assert answer.status_code == 303, answer.text
    return Person(Owner(server, name, token), password, client)


@pytest.fixture(scope="module")
def alice(server: LiveServer) -> Iterator[Person]:
    person = signed_in(server)
    yield person
    person.client.close()


@pytest.fixture(scope="module")
def bob(server: LiveServer) -> Iterator[Person]:
    person = signed_in(server)
    yield person
    person.client.close()


@pytest.fixture(scope="module")
def files_repo(alice: Person) -> str:
    big_text = b"line of text\n" * 50_000  # 650 kB: over the inline limit
    make_repo(
        alice.owner,
        "files",
        {
            "README.md": b"# Files\n",
            "notes.txt": b"hello\n",
            "big.txt": big_text,
            "blob.bin": bytes(range(256)) * 4,
            "pic.png": PNG,
        },
        {"weights.safetensors": b"\x00" * 4096},
    )
    return f"{alice.name}/files"


def test_pages_send_security_headers(server: LiveServer, files_repo: str) -> None:
    for path in ("/", f"/{files_repo}", "/login", "/nobody/nothing"):
        headers = httpx.get(server.url + path).headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"


def test_session_cookie_is_http_only_and_same_site(server: LiveServer) -> None:
    cookie = httpx.get(server.url + "/login").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie


@pytest.mark.parametrize("token", [None, "", "forged"])
def test_form_post_without_the_right_csrf_token_is_refused(
    alice: Person, token: str | None
) -> None:
    form = {"label": "sneaky", "role": "write"}
    if token is not None:
        form["csrf_token"] = token
    answer = alice.client.post("/settings/tokens", data=form)
    assert answer.status_code == 403
    assert "sneaky" not in alice.client.get("/settings/tokens").text


def test_sign_in_is_csrf_protected_too(server: LiveServer, alice: Person) -> None:
    with httpx.Client(base_url=server.url) as stranger:
        answer = stranger.post("/login", data={"username": alice.name, "password": alice.password})
    assert answer.status_code == 403


def test_wrong_password_and_unknown_user_get_the_same_answer(
    server: LiveServer, alice: Person
) -> None:
    answers = []
    for name, password in ((alice.name, "wrong"), ("nosuchuser", "wrong")):
        with httpx.Client(base_url=server.url) as client:
            form = {"username": name, "password": password, "csrf_token": ""}
            form["csrf_token"] = csrf_of(client.get("/login").text)
            answer = client.post("/login", data=form)
            answers.append((answer.status_code, "Wrong username or password" in answer.text))
            assert f'name="username" autocomplete="username" required value="{name}"' in answer.text
            assert client.get("/settings/tokens").status_code == 303  # still anonymous
    assert answers == [(401, True), (401, True)]


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/settings/tokens", "/settings/tokens"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example", "/"),
    ],
)
def test_sign_in_returns_only_to_this_site(
    server: LiveServer, alice: Person, target: str, landing: str
) -> None:
    with httpx.Client(base_url=server.url) as client:
        form = {"username": alice.name, "password": alice.password, "next": target}
        form["csrf_token"] = csrf_of(client.get("/login").text)
        answer = client.post("/login", data=form)
    assert answer.status_code == 303 and answer.headers["location"] == landing


def test_forged_cookie_is_anonymous(server: LiveServer, alice: Person) -> None:
    cookie = alice.client.cookies[COOKIE_NAME]
    forged = cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB")
    answer = httpx.get(server.url + "/settings/tokens", cookies={COOKIE_NAME: forged})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")


def test_api_takes_the_cookie_for_reads_and_needs_the_csrf_header_for_writes(
    alice: Person,
) -> None:
    assert alice.client.get("/api/whoami-v2").json()["name"] == alice.name
    body = {"name": f"via-cookie-{secrets.token_hex(3)}", "type": "model"}
    refused = alice.client.post("/api/repos/create", json=body)
    assert refused.status_code == 401
    csrf = csrf_of(alice.client.get("/settings/tokens").text)
    made = alice.client.post("/api/repos/create", json=body, headers={"X-CSRF-Token": csrf})
    assert made.status_code == 200, made.text
    assert alice.client.get(f"/{alice.name}/{body['name']}").status_code == 200


def test_private_repo_pages_are_the_missing_repo_page_to_others(
    server: LiveServer, alice: Person, bob: Person
) -> None:
    name = f"hidden-{secrets.token_hex(3)}"
    _, result = make_repo(alice.owner, name, {"README.md": b"# secret\n"}, private=True)
    assert result is not None
    pages = ["", "/tree/main", "/blob/main/README.md", "/commits/main", f"/commit/{result.sha}"]
    anonymous = httpx.Client(base_url=server.url)
    for page in pages:
        assert alice.client.get(f"/{alice.name}/{name}{page}").status_code == 200
        for client in (bob.client, anonymous):
            hidden = client.get(f"/{alice.name}/{name}{page}")
            missing = client.get(f"/{alice.name}/gone-{name}{page}")
            assert hidden.status_code == missing.status_code == 404
            assert hidden.text.replace(name, "X") == missing.text.replace(f"gone-{name}", "X")
    anonymous.close()
    assert "No models match" in bob.client.get(f"/models?search={name}").text
    assert name not in bob.client.get(f"/{alice.name}").text
    assert name in alice.client.get(f"/{alice.name}").text


def test_settings_of_a_repo_are_for_writers_only(
    alice: Person, bob: Person, files_repo: str
) -> None:
    assert alice.client.get(f"/{files_repo}/settings").status_code == 200
    assert bob.client.get(f"/{files_repo}/settings").status_code == 403
    csrf = csrf_of(bob.client.get("/settings/tokens").text)
    answer = bob.client.post(
        f"/{files_repo}/settings/delete", data={"csrf_token": csrf, "confirm": files_repo}
    )
    assert answer.status_code == 403
    assert alice.client.get(f"/{files_repo}").status_code == 200


def test_visibility_toggle_and_delete_with_confirmation(alice: Person, bob: Person) -> None:
    name = f"tmp-{secrets.token_hex(3)}"
    make_repo(alice.owner, name)
    repo_id = f"{alice.name}/{name}"
    csrf = csrf_of(alice.client.get(f"/{repo_id}/settings").text)
    alice.client.post(
        f"/{repo_id}/settings/visibility", data={"csrf_token": csrf, "visibility": "private"}
    )
    assert bob.client.get(f"/{repo_id}").status_code == 404
    wrong = alice.client.post(
        f"/{repo_id}/settings/delete", data={"csrf_token": csrf, "confirm": name}
    )
    assert wrong.status_code == 400
    done = alice.client.post(
        f"/{repo_id}/settings/delete", data={"csrf_token": csrf, "confirm": repo_id}
    )
    assert done.status_code == 303
    assert alice.client.get(f"/{repo_id}").status_code == 404


@pytest.mark.parametrize(
    ("path", "shows", "hides"),
    [
        ("notes.txt", ["hello", "1 lines"], ["Download ("]),
        ("big.txt", ["too large to display", "650.0 kB"], ["line of text"]),
        ("blob.bin", ["binary file", "Download (1.0 kB)"], []),
        ("pic.png", ['<img src="/{repo}/resolve/main/pic.png"'], []),
        ("weights.safetensors", ["Git LFS", "SHA256", "4.1 kB"], []),
    ],
)
def test_file_page_fits_the_kind_of_file(
    alice: Person, files_repo: str, path: str, shows: list[str], hides: list[str]
) -> None:
    html = alice.client.get(f"/{files_repo}/blob/main/{path}").text
    for text in shows:
        assert text.format(repo=files_repo) in html
    for text in hides:
        assert text not in html


def test_tree_of_a_missing_revision_or_path_is_404(alice: Person, files_repo: str) -> None:
    assert alice.client.get(f"/{files_repo}/tree/nope").status_code == 404
    assert alice.client.get(f"/{files_repo}/tree/main/nope").status_code == 404
    assert alice.client.get(f"/{files_repo}/blob/main/nope.txt").status_code == 404


def test_dataset_pages_and_a_pull_request_revision(alice: Person) -> None:
    name = f"ds-{secrets.token_hex(3)}"
    repo, result = make_repo(
        alice.owner,
        name,
        {"README.md": DATASET_CARD, "data/a.csv": b"x\n1\n"},
        repo_type="dataset",
    )
    assert result is not None
    add_ref(alice.owner, repo, "refs/pr/1", result.sha)
    card = alice.client.get(f"/datasets/{alice.name}/{name}").text
    assert "<h1>Rows</h1>" in card and "cc-by-4.0" in card and "load_dataset" in card
    assert "n&lt;1K" in card and "tag=task_categories%3Atabular-classification" in card
    tagged = alice.client.get("/datasets?tag=task_categories:tabular-classification").text
    assert f"{alice.name}/<strong>{name}</strong>" in tagged
    for rev in ("refs%2Fpr%2F1", "refs/pr/1"):
        tree = alice.client.get(f"/datasets/{alice.name}/{name}/tree/{rev}/data")
        assert tree.status_code == 200 and "a.csv" in tree.text
    assert alice.client.get(f"/{alice.name}/{name}").status_code == 404  # not a model


def test_static_files_are_served_with_a_long_cache_and_nothing_else(server: LiveServer) -> None:
    css = httpx.get(server.url + "/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "immutable" in css.headers["cache-control"]
    for bad in ("/static/..%2Fpages.py", "/static/base.html", "/static/nothing.css"):
        assert httpx.get(server.url + bad).status_code == 404


def test_search_pages_follow_the_next_link_to_the_end(server: LiveServer, alice: Person) -> None:
    prefix = f"pg{secrets.token_hex(3)}"
    for i in range(31):  # one more than a page
        make_repo(alice.owner, f"{prefix}-{i:02d}")
    seen: list[str] = []
    url: str | None = f"/models?search={prefix}&sort=lastModified"
    while url:
        html = alice.client.get(url).text
        seen += re.findall(rf"<strong>({prefix}-\d\d)</strong>", html)
        match = re.search(r'rel="next" href="([^"]+)"', html)
        url = match.group(1).replace("&amp;", "&") if match else None
    assert sorted(seen) == [f"{prefix}-{i:02d}" for i in range(31)]
    assert seen[0] == f"{prefix}-30"  # newest first


def test_token_made_on_the_page_works_until_revoked_there(
    server: LiveServer, alice: Person
) -> None:
    csrf = csrf_of(alice.client.get("/settings/tokens").text)
    made = alice.client.post(
        "/settings/tokens", data={"csrf_token": csrf, "label": "short-lived", "role": "read"}
    )
    secret = re.search(r'id="token-secret">(atr_[\w-]{40})<', made.text)
    assert secret is not None
    bearer = {"authorization": f"Bearer {secret.group(1)}"}
    assert httpx.get(f"{server.url}/api/whoami-v2", headers=bearer).json()["name"] == alice.name
    listing = alice.client.get("/settings/tokens").text
    assert secret.group(1) not in listing
    # Newest first: the token just made has the first revoke form.
    token_id = re.search(r'action="/settings/tokens/(\d+)/revoke"', listing)
    assert token_id is not None
    revoked = alice.client.post(
        f"/settings/tokens/{token_id.group(1)}/revoke", data={"csrf_token": csrf}
    )
    assert revoked.status_code == 303
    assert httpx.get(f"{server.url}/api/whoami-v2", headers=bearer).status_code == 401
    assert "short-lived" not in alice.client.get("/settings/tokens").text


@pytest.mark.parametrize(
    ("name", "status", "message"),
    [("files", 409, "already created"), ("bad--name", 400, "invalid repo name")],
)
def test_new_repo_form_explains_a_refusal(
    alice: Person, files_repo: str, name: str, status: int, message: str
) -> None:
    csrf = csrf_of(alice.client.get("/new").text)
    form = {"csrf_token": csrf, "type": "model", "namespace": alice.name, "name": name}
    answer = alice.client.post("/new", data=form)
    assert answer.status_code == status
    assert message in answer.text and f'value="{name}"' in answer.text  # the form is kept


def test_revision_switcher_lists_branches_and_tags(alice: Person) -> None:
    name = f"revs-{secrets.token_hex(3)}"
    repo, first = make_repo(alice.owner, name, {"a.txt": b"one\n"})
    assert first is not None
    add_ref(alice.owner, repo, "refs/tags/v1.0", first.sha)
    add_ref(alice.owner, repo, "refs/heads/dev/next", first.sha)
    html = alice.client.get(f"/{alice.name}/{name}/tree/main").text
    switcher = html[html.index('class="revswitch"') : html.index("</details>")]
    for link in ("/tree/main", "/tree/dev%2Fnext", "/tree/v1.0"):
        assert f'href="/{alice.name}/{name}{link}"' in switcher
    for rev in ("v1.0", "dev%2Fnext", first.sha[:10]):
        page = alice.client.get(f"/{alice.name}/{name}/blob/{rev}/a.txt")
        assert page.status_code == 200 and "one" in page.text


def test_big_folder_is_listed_in_pages(alice: Person) -> None:
    name = f"flat-{secrets.token_hex(3)}"
    make_repo(alice.owner, name, {f"f{i:03d}.txt": b"x" for i in range(450)})
    names: list[str] = []
    for page in (1, 2, 3):
        html = alice.client.get(f"/{alice.name}/{name}/tree/main?p={page}").text
        names += re.findall(r'class="file">(f\d{3}\.txt)</a>', html)
        assert f"Page {page} of 3 · 451 entries" in html  # with .gitattributes
    assert names == [f"f{i:03d}.txt" for i in range(450)]


def test_commit_page_of_a_huge_commit_lists_a_bounded_number_of_files(alice: Person) -> None:
    name = f"huge-{secrets.token_hex(3)}"
    _, result = make_repo(alice.owner, name, {f"f{i:04d}.txt": b"%d\n" % i for i in range(400)})
    assert result is not None
    html = alice.client.get(f"/{alice.name}/{name}/commit/{result.sha}").text
    assert "400 files changed; the first 300 are listed" in html
    assert html.count('class="badge added"') == 300
    assert html.count('class="difflines"') == 50  # line diffs for the first 50 only


def test_profiles_match_names_exactly_never_as_patterns(server: LiveServer) -> None:
    name, _ = server.new_user(f"like{secrets.token_hex(3)}")
    assert httpx.get(f"{server.url}/{name}").status_code == 200
    assert httpx.get(f"{server.url}/{name.upper()}").status_code == 200  # names ignore case
    for pattern in (f"{name[:4]}%25", f"_{name[1:]}", f"{name[:2]}_{name[3:]}", "%25"):
        page = httpx.get(f"{server.url}/{pattern}")
        assert page.status_code == 404, pattern
        assert name not in page.text
    # A name holding `_` does not collide with the names that pattern would match.
    server.new_user(f"{name[:2]}_{name[3:]}")


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(server: LiveServer) -> None:
    person = signed_in(server)
    stolen = httpx.Client(base_url=server.url, cookies=dict(person.client.cookies))
    assert stolen.get("/api/whoami-v2").json()["name"] == person.name
    assert stolen.get("/settings/tokens").status_code == 200
    page = person.client.get("/settings/tokens").text
    assert person.client.post("/logout", data={"csrf_token": csrf_of(page)}).status_code == 303
    # The copy taken before sign-out is anonymous now, on the pages and the API alike.
    assert stolen.get("/api/whoami-v2").status_code == 401
    assert stolen.get("/settings/tokens", follow_redirects=False).status_code in (303, 401)
    stolen.close()
    person.client.close()


def test_a_files_history_lists_the_commits_that_changed_it(server: LiveServer) -> None:
    """`/commits/main/<path>` (the file page's History button): only the commits that added,
    changed or removed that file or folder, newest first."""
    from huggingface_hub import HfApi

    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo = f"{owner}/history-{secrets.token_hex(2)}"
    hub.create_repo(repo)
    steps = [
        ("src/a.py", b"1", "add a"),
        ("b.txt", b"1", "add b"),
        ("src/a.py", b"2", "change a"),
        ("src/c.py", b"1", "add c"),
    ]
    for path, content, title in steps:
        hub.upload_file(
            path_or_fileobj=content, path_in_repo=path, repo_id=repo, commit_message=title
        )
    hub.delete_file("b.txt", repo, commit_message="remove b")

    def titles(path: str) -> list[str]:
        page = httpx.get(f"{server.url}/{repo}/commits/main/{path}")
        assert page.status_code == 200
        return re.findall(r'class="commit-title">([^<]+)<', page.text)

    assert titles("src/a.py") == ["change a", "add a"]
    assert titles("src") == ["add c", "change a", "add a"]
    assert titles("b.txt") == ["remove b", "add b"]
    assert "No commit on main changed" in httpx.get(f"{server.url}/{repo}/commits/main/none").text
    assert len(titles("")) == 6  # the whole history: five commits and the initial one
    blob = httpx.get(f"{server.url}/{repo}/blob/main/src/a.py").text
    assert f'href="/{repo}/commits/main/src/a.py" id="file-history"' in blob


def test_spaces_have_a_listing_and_a_place_on_profiles(server: LiveServer) -> None:
    from huggingface_hub import HfApi

    owner, token = server.new_user()
    name = f"demo-{secrets.token_hex(2)}"
    HfApi(endpoint=server.url, token=token).create_repo(
        f"{owner}/{name}", repo_type="space", space_sdk="static"
    )
    listing = httpx.get(f"{server.url}/spaces", params={"search": name})
    assert listing.status_code == 200 and f'href="/spaces/{owner}/{name}"' in listing.text
    assert 'href="/spaces"' in listing.text  # in the navigation of every page
    profile = httpx.get(f"{server.url}/{owner}").text
    assert "Spaces" in profile and f'href="/spaces/{owner}/{name}"' in profile


def test_large_files_are_labelled_by_how_they_are_stored(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import HfApi, constants

    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo = f"{owner}/stored-{secrets.token_hex(2)}"
    hub.create_repo(repo)
    hub.upload_file(path_or_fileobj=secrets.token_bytes(2048), path_in_repo="xet.bin", repo_id=repo)
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)
    hub.upload_file(path_or_fileobj=secrets.token_bytes(2048), path_in_repo="lfs.bin", repo_id=repo)
    xet = httpx.get(f"{server.url}/{repo}/blob/main/xet.bin").text
    lfs = httpx.get(f"{server.url}/{repo}/blob/main/lfs.bin").text
    assert "stored with <strong>Xet</strong>" in xet and "Xet hash" in xet
    assert "stored with <strong>Git LFS</strong>" in lfs and "Xet hash" not in lfs
    tree = httpx.get(f"{server.url}/{repo}/tree/main").text
    assert 'title="Stored with Xet">Xet<' in tree and 'title="Stored with Git LFS">LFS<' in tree


def test_listings_say_how_many_repos_match(server: LiveServer) -> None:
    from huggingface_hub import HfApi

    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    word = f"counted{secrets.token_hex(3)}"
    for n in range(3):
        hub.create_repo(f"{owner}/{word}-{n}", private=n == 2)
    public = httpx.get(f"{server.url}/models", params={"search": word}).text
    assert '<p class="muted" id="result-count">2 models</p>' in public  # the private one hidden
    one = httpx.get(f"{server.url}/models", params={"search": f"{word}-1"}).text
    assert '<p class="muted" id="result-count">1 model</p>' in one


def test_compare_shows_what_changed_between_two_revisions(server: LiveServer) -> None:
    from huggingface_hub import HfApi

    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo = f"{owner}/compare-{secrets.token_hex(2)}"
    hub.create_repo(repo)
    hub.upload_file(path_or_fileobj=b"one\n", path_in_repo="a.txt", repo_id=repo)
    hub.create_branch(repo, branch="feature/x")
    hub.upload_file(
        path_or_fileobj=b"two\n", path_in_repo="a.txt", repo_id=repo, revision="feature/x"
    )
    hub.upload_file(
        path_or_fileobj=b"new\n", path_in_repo="b.txt", repo_id=repo, revision="feature/x"
    )
    page = httpx.get(f"{server.url}/{repo}/compare/main...feature/x")
    assert page.status_code == 200
    assert "2 files changed" in page.text
    assert "-one" in page.text
    assert "+two" in page.text and 'aria-label="b.txt"' in page.text
    same = httpx.get(f"{server.url}/{repo}/compare/main...main").text
    assert "These revisions are the same commit." in same and "0 files changed" in same
    bad = httpx.get(f"{server.url}/{repo}/compare/main")
    assert bad.status_code == 400 and "BASE...HEAD" in bad.text
    assert httpx.get(f"{server.url}/{repo}/compare/main...nope").status_code == 404


def test_a_safetensors_file_page_lists_its_tensors(server: LiveServer) -> None:
    import numpy as np
    from huggingface_hub import HfApi
    from safetensors.numpy import save

    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo = f"{owner}/tensors-{secrets.token_hex(2)}"
    hub.create_repo(repo)
    weights = save(
        {"embed.weight": np.zeros((10, 4), dtype=np.float32), "head.bias": np.zeros(3, np.float16)},
        metadata={"format": "pt"},
    )
    hub.upload_file(path_or_fileobj=weights, path_in_repo="model.safetensors", repo_id=repo)
    page = httpx.get(f"{server.url}/{repo}/blob/main/model.safetensors").text
    assert "2 tensors · 43 parameters" in page
    assert "<code>embed.weight</code></td><td>F32</td><td><code>[10, 4]</code></td>" in page
    assert "<code>head.bias</code></td><td>F16</td><td><code>[3]</code>" in page
    assert "<code>format</code> = pt" in page
    # Anything else named .safetensors is just a file.
    hub.upload_file(path_or_fileobj=b"not weights", path_in_repo="x.safetensors", repo_id=repo)
    other = httpx.get(f"{server.url}/{repo}/blob/main/x.safetensors")
    assert other.status_code == 200 and 'id="tensors"' not in other.text


def test_blame_names_the_commit_of_each_line(server: LiveServer) -> None:
    from huggingface_hub import HfApi

    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo = f"{owner}/blame-{secrets.token_hex(2)}"
    hub.create_repo(repo)
    versions = [
        (b"alpha\nbeta\n", "first"),
        (b"alpha\nBETA\ngamma\n", "second"),
        (b"zero\nalpha\nBETA\ngamma\n", "third"),
    ]
    for text, title in versions:
        hub.upload_file(
            path_or_fileobj=text, path_in_repo="f.txt", repo_id=repo, commit_message=title
        )
    page = httpx.get(f"{server.url}/{repo}/blame/main/f.txt")
    assert page.status_code == 200
    rows = re.findall(r"<tr(?: class=\"run\")?>(.*?)</tr>", page.text, re.S)
    owners, current = [], None
    for row in rows:
        named = re.search(r'title="([^"]+)"', row)
        current = named.group(1) if named else current
        owners.append((current, re.search(r"<pre>(.*?)</pre>", row).group(1)))
    assert owners == [
        ("third", "zero"),
        ("first", "alpha"),
        ("second", "BETA"),
        ("second", "gamma"),
    ]
    blob = httpx.get(f"{server.url}/{repo}/blob/main/f.txt").text
    assert f'href="/{repo}/blame/main/f.txt" id="file-blame"' in blob
    hub.upload_file(path_or_fileobj=b"\x00\x01", path_in_repo="bin.dat", repo_id=repo)
    assert httpx.get(f"{server.url}/{repo}/blame/main/bin.dat").status_code == 400


def test_a_minified_json_file_is_shown_indented(server: LiveServer) -> None:
    import json

    from huggingface_hub import HfApi

    owner, token = server.new_user()
    hub = HfApi(endpoint=server.url, token=token)
    repo = f"{owner}/json-{secrets.token_hex(2)}"
    hub.create_repo(repo)
    config = {"architectures": ["BertModel"], "hidden_size": 32, "labels": list("abcdefghij") * 3}
    hub.upload_file(
        path_or_fileobj=json.dumps(config).encode(), path_in_repo="config.json", repo_id=repo
    )
    page = httpx.get(f"{server.url}/{repo}/blob/main/config.json").text
    assert re.search(r"\b3[0-9] lines\b", page)  # one line in the file, one per value here
    raw = httpx.get(f"{server.url}/{repo}/raw/main/config.json")
    assert raw.content == json.dumps(config).encode()  # the file itself is untouched


def test_account_settings_in_one_place(server: LiveServer, alice: Person) -> None:
    with httpx.Client(base_url=server.url) as browser:
        form = {"username": alice.name, "password": alice.password, "next": "/"}
        form["csrf_token"] = csrf_of(browser.get("/login").text)
        assert browser.post("/login", data=form).status_code == 303
        page = browser.get("/settings")
        assert page.status_code == 200
        assert 'href="/settings"' in page.text  # in the navigation
        for link in (
            "/settings/password",
            "/settings/tokens",
            "/settings/webhooks",
            f"/{alice.name}",
        ):
            assert f'href="{link}"' in page.text
        assert '<dd id="sign-in-methods">a password</dd>' in page.text
    assert httpx.get(f"{server.url}/settings").status_code == 303  # anonymous: sign in first


def test_files_are_created_edited_and_deleted_in_the_browser(
    server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    """Each change is a commit with its message through the API's commit service; an
    outsider's change becomes a pull request; the card page of an empty repo offers to create
    its README."""
    from huggingface_hub import HfApi

    owner, outsider = signed_in(server), signed_in(server)
    hub = HfApi(endpoint=server.url, token=owner.owner.token)
    repo = f"{owner.name}/edited-{secrets.token_hex(2)}"
    hub.create_repo(repo)
    try:
        browser = owner.client
        card = browser.get(f"/{repo}").text
        assert f'href="/{repo}/new/main?filename=README.md" id="create-card"' in card
        form = browser.get(f"/{repo}/new/main?filename=README.md").text
        assert 'value="README.md"' in form and "Commit directly to" in form
        made = browser.post(
            f"/{repo}/new/main",
            data={"csrf_token": csrf_of(form), "path": "README.md", "content": "# Hello\r\n",
                  "title": "Add the card", "target": "branch"},
        )  # fmt: skip
        assert (
            made.status_code == 303 and made.headers["location"] == f"/{repo}/blob/main/README.md"
        )
        assert hub.list_repo_commits(repo)[0].title == "Add the card"
        card_file = hub.hf_hub_download(repo, "README.md", cache_dir=tmp_path)
        assert Path(card_file).read_bytes() == b"# Hello\n"  # the browser's CRLF as LF
        # Edit: the form carries the text; a stale parent is refused like the API's 412.
        page = browser.get(f"/{repo}/edit/main/README.md").text
        assert "# Hello" in page and 'name="parent"' in page
        edited = browser.post(
            f"/{repo}/edit/main/README.md",
            data={"csrf_token": csrf_of(page), "content": "# Hello again\n", "target": "branch"},
        )
        assert edited.status_code == 303
        assert hub.list_repo_commits(repo)[0].title == "Update README.md"
        stale = browser.post(
            f"/{repo}/edit/main/README.md",
            data={"csrf_token": csrf_of(page), "content": "# Lost\n", "target": "branch",
                  "parent": re.search(r'name="parent" value="([0-9a-f]+)"', page).group(1)},
        )  # fmt: skip
        assert stale.status_code == 412
        # An outsider can only propose: the change lands on a pull request.
        theirs = outsider.client.get(f"/{repo}/edit/main/README.md").text
        assert "Commit directly to" not in theirs and "Propose the change" in theirs
        proposed = outsider.client.post(
            f"/{repo}/edit/main/README.md",
            data={"csrf_token": csrf_of(theirs), "content": "# Better\n", "title": "Improve"},
        )
        assert proposed.status_code == 303 and "/discussions/" in proposed.headers["location"]
        (pr,) = hub.get_repo_discussions(repo, discussion_type="pull_request")
        assert pr.title == "Improve" and pr.author == outsider.name
        # Delete, from the file page's form.
        blob = browser.get(f"/{repo}/blob/main/README.md").text
        gone = browser.post(f"/{repo}/delete/main/README.md", data={"csrf_token": csrf_of(blob)})
        assert gone.status_code == 303 and "README.md" not in hub.list_repo_files(repo)
        assert browser.post(f"/{repo}/delete/main/README.md").status_code == 403  # no CSRF token
        # A private repo's editor is a missing repo to an outsider.
        hidden = f"{owner.name}/hidden-{secrets.token_hex(2)}"
        hub.create_repo(hidden, private=True)
        hub.upload_file(path_or_fileobj=b"secret\n", path_in_repo="s.txt", repo_id=hidden)
        for url in (f"/{hidden}/edit/main/s.txt", f"/{hidden}/new/main"):
            missing = outsider.client.get(url)
            assert missing.status_code == 404 and "secret" not in missing.text
    finally:
        owner.client.close()
        outsider.client.close()
