"""The gate in Chromium (issue 19): the owner gates a repo on its settings page, a visitor
fills the card's access form (text, country, select, checkbox), the owner sees the answers
and accepts, rejects with a reason and grants; the visitor sees each outcome on the card, and
the client downloads exactly while access holds."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import GatedRepoError
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.gating.test_gated_repos import seed
from tests.live import LiveServer
from tests.web.browser import (
    assert_clean,
    console_errors,
    full_page_screenshot,
    one,
    requested_urls,
    texts,
)


def person(server: LiveServer) -> tuple[str, str, str]:
    """(name, password, token): a user who signs in with a password and has a write token."""
    name, password = f"gate{secrets.token_hex(3)}", secrets.token_urlsafe(12)
    _, token = server.new_user(name, password=password)
    return name, password, token


def sign_in(driver: WebDriver, server: LiveServer, name: str, password: str) -> None:
    driver.delete_all_cookies()
    driver.get(server.url + "/login")
    one(driver, "#username").send_keys(name)
    one(driver, "#password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: "/login" not in d.current_url)


def field(driver: WebDriver, label: str) -> str:
    """The id of the form control a label names."""
    for element in driver.find_elements(By.CSS_SELECTOR, "#gate-form label"):
        if element.text.strip() == label:
            return str(element.get_attribute("for"))
    raise AssertionError(f"no field labelled {label!r}")


def decide(driver: WebDriver, status: str, user: str, action: str, reason: str = "") -> None:
    row = one(driver, f"#requests-{status} [data-user='{user}']")
    if reason:
        row.find_element(By.CSS_SELECTOR, "input[name=reason]").send_keys(reason)
    row.find_element(By.CSS_SELECTOR, f"button[value={action}]").click()
    WebDriverWait(driver, 10).until(lambda d: "#access" in d.current_url)


def can_download(server: LiveServer, repo_id: str, token: str, cache: Path) -> bool:
    try:
        hf_hub_download(repo_id, "config.json", endpoint=server.url, token=token, cache_dir=cache)
        return True
    except GatedRepoError:
        return False


def test_request_review_and_outcomes_in_the_browser(
    driver: WebDriver, server: LiveServer, tmp_path: Path, hf_home: Path
) -> None:
    console_errors(driver), requested_urls(driver)  # the logs start empty for this backend
    owner, owner_password, owner_token = person(server)
    visitor, visitor_password, visitor_token = person(server)
    repo_id = f"{owner}/gated-page"
    HfApi(endpoint=server.url, token=owner_token).create_repo(repo_id)
    seed(server, owner_token, repo_id, tmp_path)

    # The owner gates the repo on its settings page.
    sign_in(driver, server, owner, owner_password)
    driver.get(f"{server.url}/{repo_id}/settings")
    one(driver, "input[name=gated][value=manual]").click()
    one(driver, "#save-gate").click()
    WebDriverWait(driver, 10).until(lambda d: "#access" in d.current_url)
    assert HfApi(endpoint=server.url, token=owner_token).model_info(repo_id).gated == "manual"
    assert "None." in one(driver, "#access").text  # no requests yet

    # Anonymous: the card and the file list are public, with a prompt to sign in.
    driver.delete_all_cookies()
    driver.get(f"{server.url}/{repo_id}")
    assert "Acknowledge the license to access this model" in one(driver, "#gate").text
    assert "/login?next=" in str(one(driver, "#gate-signin").get_attribute("href"))
    driver.get(f"{server.url}/{repo_id}/tree/main")
    assert "model.safetensors" in driver.page_source

    # The visitor: the form the card declares, refused until ticked, then pending.
    sign_in(driver, server, visitor, visitor_password)
    driver.get(f"{server.url}/{repo_id}")
    gate = one(driver, "#gate")
    assert gate.find_element(By.CSS_SELECTOR, ".gate-prompt strong").text == "responsibly"
    assert not driver.find_elements(By.CSS_SELECTOR, "#inference")
    one(driver, f"#{field(driver, 'Company')}").send_keys("Acme")
    Select(one(driver, f"#{field(driver, 'Country')}")).select_by_visible_text("France")
    Select(one(driver, f"#{field(driver, 'Intended use')}")).select_by_visible_text(
        "Something else"
    )
    driver.find_element(By.CSS_SELECTOR, "#gate-form input[type=checkbox]").click()
    full_page_screenshot(driver, "gate-form")
    one(driver, "#gate-form button[type=submit]").click()
    WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gate-status"))
    assert "awaiting a review" in one(driver, "#gate-status").text
    assert_clean(driver, server.url)
    assert not can_download(server, repo_id, visitor_token, tmp_path / "c0")
    driver.get(f"{server.url}/{repo_id}/blob/main/config.json")
    assert "Access restricted" in driver.page_source and "model_type" not in driver.page_source

    # The owner sees the answers and accepts; the visitor downloads.
    sign_in(driver, server, owner, owner_password)
    driver.get(f"{server.url}/{repo_id}/settings")
    pending = one(driver, f"#requests-pending [data-user='{visitor}']").text
    assert "Acme" in pending and "France" in pending and "other" in pending
    full_page_screenshot(driver, "gate-settings")
    decide(driver, "pending", visitor, "accept")
    assert visitor in " ".join(texts(driver, "#requests-accepted [data-user]"))
    assert can_download(server, repo_id, visitor_token, tmp_path / "c1")

    # Rejected with a reason: access ends, and the visitor reads why.
    decide(driver, "accepted", visitor, "reject", reason="Only for the research team")
    assert not can_download(server, repo_id, visitor_token, tmp_path / "c2")
    # A grant from the page, for a user who never asked.
    third, _, third_token = person(server)
    one(driver, "#grant-user").send_keys(third)
    driver.find_element(By.XPATH, "//button[normalize-space()='Grant access']").click()
    WebDriverWait(driver, 10).until(lambda d: "#access" in d.current_url)
    assert third in " ".join(texts(driver, "#requests-accepted [data-user]"))
    assert can_download(server, repo_id, third_token, tmp_path / "c3")

    # The forms need the page's CSRF token: a cross-site post with the owner's cookie
    # changes nothing.
    forged = httpx.post(
        f"{server.url}/{repo_id}/settings/access-grant",
        data={"user": visitor},
        cookies={c["name"]: c["value"] for c in driver.get_cookies()},
    )
    assert forged.status_code == 403
    assert not can_download(server, repo_id, visitor_token, tmp_path / "c4")

    sign_in(driver, server, visitor, visitor_password)
    driver.get(f"{server.url}/{repo_id}")
    status = one(driver, "#gate-status").text
    assert "rejected" in status and "Only for the research team" in status
