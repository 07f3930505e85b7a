"""The Community tab in Chromium (issue 20): a contributor opens a discussion and comments,
their pull request's files are reviewed and merged by the owner, who hides a comment; the
filters count by status and the merge commit links back to its pull request."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from huggingface_hub import CommitOperationAdd, HfApi
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.gating.test_gate_pages import person, sign_in
from tests.live import LiveServer
from tests.web.browser import (
    assert_clean,
    console_errors,
    full_page_screenshot,
    one,
    requested_urls,
    texts,
)


def click(driver: WebDriver, css: str) -> None:
    before = driver.current_url
    one(driver, css).click()
    WebDriverWait(driver, 10).until(
        lambda d: (
            d.current_url != before or d.execute_script("return document.readyState") == "complete"
        )
    )


def test_discussion_pull_request_review_and_merge_in_the_browser(
    driver: WebDriver, server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    console_errors(driver), requested_urls(driver)  # the logs start empty for this backend
    owner, owner_password, owner_token = person(server)
    helper, helper_password, helper_token = person(server)
    repo_id = f"{owner}/shared-{secrets.token_hex(2)}"
    hub = HfApi(endpoint=server.url, token=owner_token)
    hub.create_repo(repo_id)
    hub.upload_file(path_or_fileobj=b"hello\n", path_in_repo="notes.txt", repo_id=repo_id)

    # The helper opens a discussion from the Community tab and comments on it.
    sign_in(driver, server, helper, helper_password)
    driver.get(f"{server.url}/{repo_id}")
    driver.find_element(By.LINK_TEXT, "Community").click()
    one(driver, "#new-discussion").click()
    one(driver, "#title").send_keys("Typo in the notes")
    one(driver, "#description").send_keys("The notes say **hello**, should be *hi*.")
    one(driver, "#new-thread button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: "/discussions/1" in d.current_url)
    assert one(driver, "#thread-title").text.startswith("Typo in the notes")
    assert one(driver, "#events .comment-body strong").text == "hello"
    one(driver, "#comment").send_keys("I can send a fix.")
    one(driver, "#comment-form button[type=submit]").click()
    WebDriverWait(driver, 10).until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, ".event.comment")) == 2
    )
    assert_clean(driver, server.url)

    # Their fix arrives as a pull request (through the client, as they would send it).
    pr = HfApi(endpoint=server.url, token=helper_token).create_commit(
        repo_id,
        [CommitOperationAdd("notes.txt", b"hi\n")],
        commit_message="Fix the typo",
        create_pr=True,
    )
    assert pr.pr_num == 2

    # The owner reviews the files, hides a comment and merges.
    sign_in(driver, server, owner, owner_password)
    driver.get(f"{server.url}/{repo_id}/discussions")
    assert texts(driver, "#filter-open .count") == ["2"]
    driver.find_element(By.LINK_TEXT, "Fix the typo").click()
    WebDriverWait(driver, 10).until(lambda d: "/discussions/2" in d.current_url)
    assert "open" in one(driver, "#thread-status").text.lower()
    one(driver, "#files-changed").click()
    WebDriverWait(driver, 10).until(lambda d: "/files" in d.current_url)
    diff = one(driver, ".difflines").text
    assert "-hello" in diff and "+hi" in diff
    full_page_screenshot(driver, "pr-files")
    driver.back()
    one(driver, "#merge-comment").send_keys("Thanks!")
    one(driver, "#merge-button").click()
    WebDriverWait(driver, 10).until(lambda d: "merged" in one(d, "#thread-status").text.lower())
    full_page_screenshot(driver, "pr-merged")
    assert (
        HfApi(endpoint=server.url, token=owner_token).get_discussion_details(repo_id, 2).status
        == "merged"
    )
    notes = httpx.get(f"{server.url}/{repo_id}/resolve/main/notes.txt").text
    assert notes == "hi\n"
    # The merge commit's page names its pull request.
    merge_sha = hub.get_discussion_details(repo_id, 2).merge_commit_oid
    driver.get(f"{server.url}/{repo_id}/commit/{merge_sha}")
    assert "#2" in one(driver, "#commit-pulls").text

    driver.get(f"{server.url}/{repo_id}/discussions/1")
    helper_comment = driver.find_elements(By.CSS_SELECTOR, ".event.comment")[1]
    helper_comment.find_element(By.CSS_SELECTOR, ".hide-form button").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".hidden-comment"))
    assert "I can send a fix" not in driver.page_source
    one(driver, "#close-button").click()
    WebDriverWait(driver, 10, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: "closed" in one(d, "#thread-status").text.lower()  # the page reloads
    )
    driver.get(f"{server.url}/{repo_id}/discussions?status=closed")
    assert texts(driver, "#filter-closed .count") == ["2"]
    assert texts(driver, "#filter-merged .count") == ["1"]
    assert len(driver.find_elements(By.CSS_SELECTOR, "#threads .thread")) == 2
    assert_clean(driver, server.url)

    # The helper may reopen their own thread, but not merge or hide; forms need CSRF.
    sign_in(driver, server, helper, helper_password)
    driver.get(f"{server.url}/{repo_id}/discussions/1")
    assert not driver.find_elements(By.CSS_SELECTOR, ".hide-form")
    one(driver, "#reopen-button").click()
    WebDriverWait(driver, 10).until(lambda d: "open" in one(d, "#thread-status").text.lower())
    forged = httpx.post(
        f"{server.url}/{repo_id}/discussions/1/comment",
        data={"comment": "forged"},
        cookies={c["name"]: c["value"] for c in driver.get_cookies()},
    )
    assert forged.status_code == 403
    assert "forged" not in httpx.get(f"{server.url}/api/models/{repo_id}/discussions/1").text
