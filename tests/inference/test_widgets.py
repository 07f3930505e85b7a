"""The inference widget of every served task, in headless Chromium (issue 17 §5): each tiny
model's page offers the task's own inputs, and the answer is drawn for people (label bars,
highlighted entities, an answer, similarity scores, streamed text, a vector's size), never
raw JSON; no page logs an error or asks anything of another origin."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.hub.readkit import Owner, make_repo
from tests.inference import kit
from tests.live import LiveServer
from tests.web.browser import assert_clean

TIMEOUT_S = 120  # a cold model loads on its first call


@pytest.fixture(scope="module")
def similarity(owner: Owner) -> str:
    files, lfs = kit.minilm_files()
    files["README.md"] = kit.card("sentence-similarity", "sentence-transformers")
    make_repo(owner, "widget-similarity", files, lfs)
    return f"{owner.name}/widget-similarity"


def compute(
    driver: WebDriver, live: LiveServer, repo_id: str, task: str, chat: bool = False
) -> object:
    """Open the repo's page, check the widget's task, press Compute, wait for the answer.
    With chat, first wait for the page to offer chat (the model facts are derived from the
    commit by the event consumer, within a poll of the live server)."""
    deadline = time.monotonic() + 30
    while True:
        driver.get(f"{live.url}/{repo_id}")
        form = driver.find_element(By.CSS_SELECTOR, "form[data-inference]")
        if not chat or form.get_attribute("data-chat") or time.monotonic() > deadline:
            break
        time.sleep(1)
    if chat:
        assert form.get_attribute("data-chat") == "/v1/chat/completions"
    assert form.get_attribute("data-task") == task
    form.find_element(By.XPATH, ".//button[normalize-space()='Compute']").click()
    out = form.find_element(By.CSS_SELECTOR, "output")
    WebDriverWait(driver, TIMEOUT_S).until(lambda d: out.get_attribute("data-done") == "true")
    assert "is-error" not in (out.get_attribute("class") or ""), out.text
    assert not out.text.lstrip().startswith(("{", "[")), f"raw JSON shown: {out.text[:200]}"
    return out


def bars(out: object) -> list[str]:
    return [li.text for li in out.find_elements(By.CSS_SELECTOR, ".scores li .score-label")]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("task", "expect"),
    [
        ("text-classification", ".scores .score-bar"),
        ("fill-mask", ".scores .score-bar"),
        ("zero-shot-classification", ".scores .score-bar"),
        ("token-classification", ".entities"),
        ("question-answering", ".answer"),
        ("text-generation", ".generated"),
        ("summarization", ".generated"),
        ("translation", ".generated"),
        ("text2text-generation", ".generated"),
    ],
)
def test_text_widgets_draw_their_answers(
    driver: WebDriver, live: LiveServer, tiny: dict[str, str], task: str, expect: str
) -> None:
    out = compute(driver, live, tiny[task], task, chat=task == "text-generation")
    assert out.find_elements(By.CSS_SELECTOR, expect), out.text  # type: ignore[attr-defined]
    if task == "zero-shot-classification":
        assert sorted(bars(out)) == ["cooking", "sports", "travel"]
    if task == "text-classification":
        assert sorted(bars(out)) == sorted(kit.LABELS[task])
    assert_clean(driver, live.url)


@pytest.mark.parametrize("task", ["image-classification", "zero-shot-image-classification"])
def test_image_widgets_take_an_upload(
    driver: WebDriver, live: LiveServer, tiny: dict[str, str], task: str, tmp_path: Path
) -> None:
    image = tmp_path / "red.png"
    image.write_bytes(kit.png("red"))
    driver.get(f"{live.url}/{tiny[task]}")
    form = driver.find_element(By.CSS_SELECTOR, "form[data-inference]")
    form.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(image))
    form.find_element(By.XPATH, ".//button[normalize-space()='Compute']").click()
    out = form.find_element(By.CSS_SELECTOR, "output")
    WebDriverWait(driver, TIMEOUT_S).until(lambda d: out.get_attribute("data-done") == "true")
    assert "is-error" not in (out.get_attribute("class") or ""), out.text
    expected = ["cat", "dog"] if task.startswith("zero-shot") else sorted(kit.IMAGE_LABELS)
    assert sorted(bars(out)) == expected
    assert_clean(driver, live.url)


def test_similarity_and_feature_extraction_widgets(
    driver: WebDriver, live: LiveServer, similarity: str, minilm: str
) -> None:
    out = compute(driver, live, similarity, "sentence-similarity")
    assert bars(out) == ["A kitten rests on a rug.", "The stock market fell today."]
    scores = [float(s.text) for s in out.find_elements(By.CSS_SELECTOR, ".score-value")]  # type: ignore[attr-defined]
    assert scores[0] > scores[1], "the paraphrase should score higher"
    out = compute(driver, live, minilm, "feature-extraction")
    assert out.find_element(By.CSS_SELECTOR, ".dims").text == "384 dimensions"  # type: ignore[attr-defined]
    assert_clean(driver, live.url)
