"""The pages in headless Chromium: sign in, create a token and a repo in the browser, upload
a card with huggingface_hub and that token, then read it back as a visitor would. Every test
ends by checking the browser logged no console error and requested nothing off the server.
Screenshots land in tests/artifacts/web/."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import pytest
from huggingface_hub import CommitOperationAdd, HfApi
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.hub.readkit import no_xet  # noqa: F401 - autouse: uploads use LFS, not Xet
from tests.live import LiveServer
from tests.web.browser import (
    DESKTOP,
    PHONE,
    assert_clean,
    full_page_screenshot,
    one,
    screenshot,
    texts,
)

pytestmark = pytest.mark.e2e

CARD = b"""---
license: mit
library_name: transformers
pipeline_tag: text-classification
language: [en]
datasets: [acme/reviews]
tags: [sentiment, tiny]
---
# Demo classifier

A tiny model for the page tests.

## Results

| split | accuracy |
|-------|---------:|
| test  | 0.93     |

```python
from transformers import pipeline
classify = pipeline("text-classification")
```

See [the code](src/model.py).
"""
MODEL_PY = b"import torch\n\n\ndef forward(x):\n    return torch.relu(x)\n"
WEIGHTS = hashlib.sha256(b"weights").digest() * 640  # 20,480 bytes, stored with LFS
XSS_CARD = b"""---
license: mit
---
# Payload card

<script>window.__xss = "script"</script>

<img src="README.md" onerror="window.__xss = 'onerror'">

[click me](javascript:window.__xss='link')

<a href="jAvAscript:window.__xss='mixed-case'">evil</a>

<svg><script>window.__xss = "svg"</script></svg>

<iframe src="javascript:window.top.__xss='iframe'"></iframe>

<p style="position:fixed;inset:0" onmouseover="window.__xss='hover'">after the payloads</p>
"""


@dataclass(frozen=True)
class Site:
    url: str
    user: str
    password: str


@dataclass(frozen=True)
class Demo:
    repo_id: str
    token: str

    @property
    def name(self) -> str:
        return self.repo_id.split("/")[1]


@pytest.fixture(scope="module")
def site(server: LiveServer) -> Site:
    """A user made with the documented command, password on stdin."""
    name, password = f"web{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    done = server.cli("users", "create", name, "--password-stdin", input=password + "\n")
    assert done.returncode == 0, done.stderr
    return Site(server.url, name, password)


def wait_for_url(driver: WebDriver, fragment: str) -> None:
    WebDriverWait(driver, 10).until(EC.url_contains(fragment))


def sign_in(driver: WebDriver, site: Site) -> None:
    """Through the form, keyboard only: type, Tab, type, Enter."""
    driver.get(site.url + "/login")
    one(driver, "#username").send_keys(site.user, Keys.TAB, site.password)
    screenshot(driver, "login")
    one(driver, "#password").send_keys(Keys.ENTER)
    WebDriverWait(driver, 10).until(lambda d: "/login" not in d.current_url)


def sign_out(driver: WebDriver) -> None:
    driver.find_element(By.XPATH, "//button[normalize-space()='Sign out']").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.LINK_TEXT, "Sign in"))


def create_token(driver: WebDriver, site: Site, label: str) -> str:
    driver.get(site.url + "/settings/tokens")
    one(driver, "#label").send_keys(label)
    one(driver, "input[name=role][value=write]").click()
    driver.find_element(By.XPATH, "//button[normalize-space()='Create token']").click()
    secret = WebDriverWait(driver, 10).until(lambda d: one(d, "#token-secret")).text
    screenshot(driver, "tokens")
    return secret


def new_repo(driver: WebDriver, site: Site, name: str, *, private: bool = False) -> None:
    driver.get(site.url + "/new")
    one(driver, "#name").send_keys(name)
    if private:
        one(driver, "input[name=visibility][value=private]").click()
    screenshot(driver, "new-repo")
    driver.find_element(By.XPATH, "//button[normalize-space()='Create repository']").click()
    wait_for_url(driver, f"/{site.user}/{name}")


@pytest.fixture(scope="module")
def demo(driver: WebDriver, site: Site) -> Demo:
    """Signed in; a write token and a repo made in the browser; the card pushed through the
    Hub API with that token."""
    sign_in(driver, site)
    token = create_token(driver, site, "page tests")
    name = f"demo-{secrets.token_hex(3)}"
    new_repo(driver, site, name)
    repo_id = f"{site.user}/{name}"
    HfApi(endpoint=site.url, token=token).create_commit(
        repo_id,
        [
            CommitOperationAdd("README.md", CARD),
            CommitOperationAdd("config.json", b'{"model_type": "bert"}\n'),
            CommitOperationAdd("src/model.py", MODEL_PY),
            CommitOperationAdd("model.safetensors", WEIGHTS),
        ],
        commit_message="Add the card and weights",
    )
    return Demo(repo_id, token)


def test_token_is_shown_once_then_listed_by_its_hint(
    driver: WebDriver, site: Site, demo: Demo
) -> None:
    assert demo.token.startswith("atr_")
    driver.get(site.url + "/settings/tokens")
    assert demo.token not in driver.page_source
    assert f"…{demo.token[-4:]}" in texts(driver, "#tokens td")
    assert HfApi(endpoint=site.url, token=demo.token).whoami()["name"] == site.user
    assert_clean(driver, site.url)


def test_card_shows_rendered_markdown_and_metadata(
    driver: WebDriver, site: Site, demo: Demo
) -> None:
    driver.get(f"{site.url}/{demo.repo_id}")
    assert texts(driver, "#card h1") == ["Demo classifier"]
    assert texts(driver, "#card h2") == ["Results"]
    assert texts(driver, "#card td") == ["test", "0.93"]
    assert "pipeline" in texts(driver, "#card pre code .hl-n")  # highlighted by pygments
    link = one(driver, "#card a[href$='model.py']").get_attribute("href")
    assert link == f"{site.url}/{demo.repo_id}/blob/main/src/model.py"
    meta = one(driver, "#metadata").text
    for fact in ("text-classification", "transformers", "mit", "en", "acme/reviews", "sentiment"):
        assert fact in meta
    assert one(driver, "#files-count").text == "5 files"
    assert one(driver, "#downloads").text == "0"
    assert "snapshot_download" in one(driver, "#use").text
    assert one(driver, "form[data-inference]").get_attribute("data-inference") == (
        f"/models/{demo.repo_id}"
    )
    full_page_screenshot(driver, "card")
    assert_clean(driver, site.url)


def test_tree_blob_and_history_link_up(driver: WebDriver, site: Site, demo: Demo) -> None:
    driver.get(f"{site.url}/{demo.repo_id}")
    driver.find_element(By.LINK_TEXT, "Files and versions").click()
    wait_for_url(driver, "/tree/main")
    assert texts(driver, "#files a.dir") == ["src/"]
    weights = driver.find_element(By.XPATH, "//tr[.//a[normalize-space()='model.safetensors']]")
    # Uploaded through LFS; labelled Xet when the hub also holds its Xet form (another upload
    # of the same bytes through Xet gives it one): the file page must say the same.
    storage = weights.find_element(By.CSS_SELECTOR, ".badge.lfs").text
    assert storage in ("LFS", "XET")
    assert "20.5 kB" in weights.text and "Add the card and weights" in weights.text
    screenshot(driver, "tree")
    driver.find_element(By.LINK_TEXT, "src/").click()
    wait_for_url(driver, "/tree/main/src")
    driver.find_element(By.LINK_TEXT, "model.py").click()
    wait_for_url(driver, "/blob/main/src/model.py")
    assert "def" in texts(driver, "#blob .hl-k")
    assert "5 lines" in one(driver, ".filehead").text
    screenshot(driver, "blob")
    driver.get(f"{site.url}/{demo.repo_id}/blob/main/model.safetensors")
    info = one(driver, ".fileinfo").text
    assert hashlib.sha256(WEIGHTS).hexdigest() in info
    assert ("Xet" if storage == "XET" else "Git LFS") in one(driver, "#storage-note").text
    one(driver, "#file-history").click()
    wait_for_url(driver, "/commits/main/model.safetensors")  # the file's own history
    assert texts(driver, "#commits .commit-title") == ["Add the card and weights"]
    driver.find_element(By.LINK_TEXT, "Add the card and weights").click()
    wait_for_url(driver, "/commit/")
    diff = one(driver, "main").text
    assert "+def forward(x):" in diff and "Large file (LFS)" in diff
    assert texts(driver, ".diff .badge") == ["ADDED"] * 4  # CSS upper-cases badges
    full_page_screenshot(driver, "commit")
    assert_clean(driver, site.url)


def test_search_filters_and_sort(driver: WebDriver, site: Site, demo: Demo) -> None:
    driver.get(site.url + "/models")
    one(driver, "#f-search").send_keys(demo.name)
    Select(one(driver, "#f-task")).select_by_value("text-classification")
    Select(one(driver, "#f-library")).select_by_value("transformers")
    Select(one(driver, "#f-sort")).select_by_value("downloads")
    driver.find_element(By.XPATH, "//button[normalize-space()='Apply filters']").click()
    wait_for_url(driver, "sort=downloads")
    assert texts(driver, "#results .repocard-title") == [demo.repo_id]
    screenshot(driver, "search")
    Select(one(driver, "#f-library")).select_by_value("diffusers")
    driver.find_element(By.XPATH, "//button[normalize-space()='Apply filters']").click()
    wait_for_url(driver, "library=diffusers")
    assert "No models match" in one(driver, "#results").text
    driver.get(f"{site.url}/models?license=mit&tag=sentiment&search={demo.name}")
    assert texts(driver, "#results .repocard-title") == [demo.repo_id]
    driver.get(f"{site.url}/models?license=apache-2.0&search={demo.name}")
    assert texts(driver, "#results .repocard-title") == []
    # The card's pills are links to the filtered list.
    driver.get(f"{site.url}/{demo.repo_id}")
    driver.find_element(By.LINK_TEXT, "sentiment").click()
    wait_for_url(driver, "tag=sentiment")
    assert demo.repo_id in texts(driver, "#results .repocard-title")
    driver.get(site.url + "/")
    assert demo.repo_id in texts(driver, ".homelist .repocard-title")
    screenshot(driver, "home")
    assert_clean(driver, site.url)


def test_xss_payloads_in_a_card_neither_run_nor_appear(
    driver: WebDriver, site: Site, demo: Demo
) -> None:
    api = HfApi(endpoint=site.url, token=demo.token)
    repo_id = f"{site.user}/xss-{secrets.token_hex(3)}"
    api.create_repo(repo_id)
    api.upload_file(path_or_fileobj=XSS_CARD, path_in_repo="README.md", repo_id=repo_id)
    driver.get(f"{site.url}/{repo_id}")
    card = one(driver, "#card")
    assert "after the payloads" in card.text  # the card rendered past every payload
    html = card.get_attribute("innerHTML") or ""
    for needle in ("<script", "onerror", "onmouseover", "javascript:", "<iframe", "style="):
        assert needle not in html.lower()
    driver.find_element(By.LINK_TEXT, "evil").click()
    driver.find_element(By.LINK_TEXT, "click me").click()
    ActionChains(driver).move_to_element(
        driver.find_element(By.XPATH, "//p[contains(., 'after the payloads')]")
    ).perform()
    assert driver.execute_script("return window.__xss") is None
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018 - raises when no alert is open
    assert driver.current_url == f"{site.url}/{repo_id}"
    screenshot(driver, "xss")
    assert_clean(driver, site.url)


def test_private_repo_is_the_same_404_as_a_missing_one(
    driver: WebDriver, site: Site, demo: Demo
) -> None:
    name = f"secret-{secrets.token_hex(3)}"
    new_repo(driver, site, name, private=True)
    assert one(driver, ".reponame .badge.private").text == "PRIVATE"  # CSS upper-cases it
    sign_out(driver)
    try:
        driver.get(f"{site.url}/{site.user}/{name}")
        hidden = one(driver, "main").text.replace(name, "NAME")
        screenshot(driver, "not-found")
        driver.get(f"{site.url}/{site.user}/missing-{name}")
        missing = one(driver, "main").text.replace(f"missing-{name}", "NAME")
        assert hidden == missing and "Not found" in hidden
        driver.get(f"{site.url}/models?search={name}")
        assert texts(driver, "#results .repocard-title") == []
        # 404 answers are expected here; nothing else may be logged.
        assert_clean(driver, site.url, allowed_errors=("404 (Not Found)",))
    finally:
        sign_in(driver, site)


def press_tab_until(driver: WebDriver, text: str, limit: int = 80) -> None:
    """Tab through the page until the focused element reads `text`, as a keyboard user."""
    for _ in range(limit):
        ActionChains(driver).send_keys(Keys.TAB).perform()
        if driver.switch_to.active_element.text.strip() == text:
            return
    raise AssertionError(f"{text!r} is not reachable with Tab")


def test_keyboard_alone_reaches_files_and_history(
    driver: WebDriver, site: Site, demo: Demo
) -> None:
    driver.get(f"{site.url}/{demo.repo_id}")
    press_tab_until(driver, "Skip to content")
    press_tab_until(driver, "Files and versions")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_for_url(driver, "/tree/main")
    press_tab_until(driver, "src/")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_for_url(driver, "/tree/main/src")
    press_tab_until(driver, "model.py")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    wait_for_url(driver, "/blob/main/src/model.py")
    press_tab_until(driver, "rev main")
    ActionChains(driver).send_keys(Keys.ENTER).perform()  # opens the branch menu
    press_tab_until(driver, "main")
    assert_clean(driver, site.url)


@pytest.mark.parametrize("page", ["", "/tree/main", "/blob/main/src/model.py", "/commits/main"])
def test_phone_width_pages_do_not_scroll_sideways(
    driver: WebDriver, site: Site, demo: Demo, page: str
) -> None:
    driver.set_window_size(*PHONE)
    try:
        driver.get(f"{site.url}/{demo.repo_id}{page}")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        viewport = driver.execute_script("return window.innerWidth")
        assert width <= viewport, f"{page or 'card'} is {width}px wide on a {viewport}px screen"
        name = "phone-" + (page.split("/")[1] if page else "card")
        full_page_screenshot(driver, name)
    finally:
        driver.set_window_size(*DESKTOP)
    assert_clean(driver, site.url)


def test_inference_widget_posts_with_the_session_to_the_inference_api(
    driver: WebDriver, site: Site, demo: Demo
) -> None:
    """A private repo without weights: the answer can only be the inference route's own
    "no weights" error if the widget's request carried the session (else it is a 404)."""
    name = f"widget-{secrets.token_hex(3)}"
    new_repo(driver, site, name, private=True)
    api = HfApi(endpoint=site.url, token=demo.token)
    card = b"---\npipeline_tag: text-classification\n---\n# Widget\n"
    api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=f"{site.user}/{name}")
    driver.get(f"{site.url}/{site.user}/{name}")
    driver.find_element(By.XPATH, "//button[normalize-space()='Compute']").click()
    out = one(driver, "#inference output")
    WebDriverWait(driver, 30).until(lambda d: out.text.startswith("Error"))
    assert out.text.startswith("Error 400:") and "no safetensors weights" in out.text
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", out)
    screenshot(driver, "widget")
    assert_clean(driver, site.url, allowed_errors=("400 (Bad Request)",))


def test_copy_button_puts_the_snippet_on_the_clipboard(
    driver: WebDriver, site: Site, demo: Demo
) -> None:
    driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": site.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    driver.get(f"{site.url}/{demo.repo_id}")
    button = one(driver, "button[aria-label='Copy the git snippet']")
    button.click()
    WebDriverWait(driver, 5).until(lambda d: button.text == "Copied")
    copied = driver.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], () => arguments[0](null))"
    )
    assert copied == f"git lfs install\ngit clone {site.url}/{demo.repo_id}"
    assert_clean(driver, site.url)


def test_the_api_docs_work_without_internet(driver: WebDriver, site: Site) -> None:
    """`/docs` is Swagger UI served by the hub itself: it lists the API's operations and asks
    nothing of any other origin (a self-hosted hub often has no internet access)."""
    driver.get(site.url + "/docs")
    WebDriverWait(driver, 20).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".opblock-summary-path"))
    )
    paths = texts(driver, ".opblock-summary-path")
    assert "/api/whoami-v2" in [p.replace("\u200b", "") for p in paths]
    assert len(paths) > 50
    assert_clean(driver, site.url)


def test_snippets_keep_repo_ids_whole_at_phone_width(
    driver: WebDriver, site: Site, demo: Demo
) -> None:
    """Each line of a "Use this model" snippet is drawn on one line (a long one scrolls in its
    box), so `from_pretrained("alice/big-model")` never breaks at the id."""
    driver.set_window_size(*PHONE)
    try:
        driver.get(f"{site.url}/{demo.repo_id}")
        wrapped = driver.execute_script(
            """
            return [...document.querySelectorAll('.snippet code')].filter(code => {
              const lines = code.textContent.split('\\n').length;
              const height = parseFloat(getComputedStyle(code).lineHeight);
              return code.getBoundingClientRect().height > lines * height + 2;
            }).map(code => code.id);
            """
        )
        assert wrapped == []
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= PHONE[0]  # the page itself does not scroll sideways
    finally:
        driver.set_window_size(*DESKTOP)
