"""Headless Chromium for the page tests: Debian's /usr/bin/chromium driven by its own
chromedriver through selenium (never a downloaded browser), with the console and network
logs on, so every test can check that a page logged no error and asked nothing of any
other origin. Screenshots go to tests/artifacts/web/ (ignored by git)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "web"
DESKTOP = (1366, 900)
PHONE = (390, 844)  # an iPhone 12-14 viewport in CSS pixels


def chromium_available() -> bool:
    return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()


@contextmanager
def chromium() -> Iterator[WebDriver]:
    if not chromium_available():
        if os.environ.get("CI") == "true":
            pytest.fail("chromium and chromium-driver are not installed; .ci/run installs them")
        pytest.skip("chromium is not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        f"--window-size={DESKTOP[0]},{DESKTOP[1]}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: WebDriver) -> list[str]:
    """SEVERE console entries since the last call (reading the log empties it)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def requested_urls(driver: WebDriver) -> list[str]:
    """Every URL the pages requested since the last call (the DevTools network log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def assert_clean(driver: WebDriver, origin: str, allowed_errors: tuple[str, ...] = ()) -> None:
    """No console error, and no request to anything but the server itself."""
    errors = [e for e in console_errors(driver) if not any(a in e for a in allowed_errors)]
    assert errors == [], errors
    foreign = [u for u in requested_urls(driver) if not u.startswith((origin + "/", "data:"))]
    assert foreign == [], foreign


def screenshot(driver: WebDriver, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def full_page_screenshot(driver: WebDriver, name: str) -> Path:
    """The whole page, not only the viewport: resize the window to the document's height."""
    width, height = driver.get_window_size()["width"], driver.get_window_size()["height"]
    total = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(width, min(int(total) + 120, 4000))
    try:
        return screenshot(driver, name)
    finally:
        driver.set_window_size(width, height)


def texts(driver: WebDriver, css: str) -> list[str]:
    return [element.text for element in driver.find_elements(By.CSS_SELECTOR, css)]


def one(driver: WebDriver, css: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, css)


def clear_artifacts() -> None:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
