"""The dataset viewer on a dataset's card page, in headless Chromium: column types, the first
rows, switching split, the next page, search, and image cells shown as thumbnails from the
viewer's `/assets` route; and, over plain HTTP, a private dataset's viewer hidden from
visitors. Datasets are tiny parquet files built in code and committed in-process."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pyarrow as pa
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.datasets.kit import dataset, parquet_bytes, png_bytes
from tests.hub.readkit import Owner, new_owner
from tests.live import LiveServer
from tests.web.browser import assert_clean, full_page_screenshot, one, texts

pytestmark = pytest.mark.e2e

TRAIN_ROWS = 45  # three pages of 20
RED, BLUE = png_bytes((255, 0, 0)), png_bytes((0, 0, 255))
FEATURES = {
    "id": {"dtype": "int64", "_type": "Value"},
    "name": {"dtype": "string", "_type": "Value"},
    "tags": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "List"},
    "image": {"_type": "Image"},
    "label": {"names": ["neg", "pos"], "_type": "ClassLabel"},
}


def split_parquet(names: list[str]) -> bytes:
    """Rows `{id, name, tags, image, label}` with `datasets`' features in the schema
    metadata, so images (bytes embedded in the file) and class labels are read as such."""
    images = [{"bytes": RED if i % 2 == 0 else BLUE, "path": None} for i in range(len(names))]
    table = pa.table(
        {
            "id": pa.array(range(len(names)), pa.int64()),
            "name": names,
            "tags": [["even" if i % 2 == 0 else "odd"] for i in range(len(names))],
            "image": pa.array(images, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            "label": pa.array([i % 2 for i in range(len(names))], pa.int64()),
        }
    )
    metadata = {b"huggingface": json.dumps({"info": {"features": FEATURES}}).encode()}
    return parquet_bytes(table.replace_schema_metadata(metadata))


@dataclass(frozen=True)
class Fixture:
    url: str
    owner: Owner
    public: str
    private: str


@pytest.fixture(scope="module")
def fx(server: LiveServer) -> Fixture:
    owner = new_owner(server)
    files = {
        "data/train-00000-of-00001.parquet": split_parquet(
            [f"train row {i}" for i in range(TRAIN_ROWS)]
        ),
        "data/test-00000-of-00001.parquet": split_parquet(
            ["held-out alpha", "held-out beta", "held-out gamma"]
        ),
    }
    public = dataset(owner, "viewer-public", lfs=files)
    private = dataset(owner, "viewer-private", lfs=files, private=True)
    return Fixture(server.url, owner, public, private)


def first_column(driver: WebDriver, column: int) -> list[str]:
    return texts(driver, f"#viewer tbody tr td:nth-child({column + 1})")


def test_viewer_shows_types_rows_thumbnails_and_pages(driver: WebDriver, fx: Fixture) -> None:
    driver.get(f"{fx.url}/datasets/{fx.public}")
    assert texts(driver, "#viewer thead .col-name") == ["id", "name", "tags", "image", "label"]
    assert texts(driver, "#viewer thead .col-type") == [
        "int64",
        "string",
        "list<string>",
        "image",
        "class label",
    ]
    assert first_column(driver, 2)[:3] == ["train row 0", "train row 1", "train row 2"]
    assert len(first_column(driver, 2)) == 20
    assert first_column(driver, 3)[:2] == ['["even"]', '["odd"]']
    assert first_column(driver, 5)[:2] == ["neg (0)", "pos (1)"]
    assert one(driver, "#viewer-count").text == f"Rows 1 to 20 of {TRAIN_ROWS}"
    assert texts(driver, "#viewer .viewer-splits a[aria-current]") == ["train"]

    thumb = one(driver, "#viewer img.thumb")
    assert "/api/datasets-server/assets?" in (thumb.get_attribute("src") or "")
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('#viewer img.thumb')].slice(0, 2)"
            ".every(i => i.complete && i.naturalWidth === 4)"
        )
    )
    full_page_screenshot(driver, "dataset-viewer")

    driver.find_element(By.CSS_SELECTOR, "#viewer a[rel=next]").click()
    WebDriverWait(driver, 10).until(lambda d: "offset=20" in d.current_url)
    assert first_column(driver, 1)[0] == "20"
    assert one(driver, "#viewer-count").text == f"Rows 21 to 40 of {TRAIN_ROWS}"
    assert driver.find_elements(By.CSS_SELECTOR, "#viewer a[rel=prev]")
    assert_clean(driver, fx.url)


def test_switching_split_and_searching(driver: WebDriver, fx: Fixture) -> None:
    driver.get(f"{fx.url}/datasets/{fx.public}")
    driver.find_element(By.LINK_TEXT, "test").click()
    WebDriverWait(driver, 10).until(lambda d: "split=test" in d.current_url)
    assert first_column(driver, 2) == ["held-out alpha", "held-out beta", "held-out gamma"]
    assert one(driver, "#viewer-count").text == "Rows 1 to 3 of 3"
    assert not driver.find_elements(By.CSS_SELECTOR, "#viewer a[rel=next]")

    one(driver, "#viewer-q").send_keys("gamma", Keys.ENTER)
    WebDriverWait(driver, 10).until(lambda d: "q=gamma" in d.current_url)
    assert first_column(driver, 2) == ["held-out gamma"]
    assert first_column(driver, 1) == ["2"]  # its index in the split
    assert "matching “gamma”" in one(driver, "#viewer-count").text

    search = f"{fx.url}/datasets/{fx.public}?{urlencode({'split': 'train', 'q': 'row 44'})}"
    driver.get(search)
    assert first_column(driver, 2) == ["train row 44"]
    assert_clean(driver, fx.url)


def test_private_dataset_viewer_is_not_found_to_visitors(fx: Fixture) -> None:
    page = f"/datasets/{fx.private}?split=test&q=alpha"
    with httpx.Client(base_url=fx.url) as visitor:
        assert visitor.get(page).status_code == 404
        asset = f"/api/datasets-server/assets?dataset={fx.private}&split=test&row=0&column=image"
        assert visitor.get(asset).status_code == 404
        owner = {"Authorization": f"Bearer {fx.owner.token}"}
        shown = visitor.get(asset, headers=owner)
        assert shown.status_code == 200 and shown.content == RED
        public = visitor.get(f"/datasets/{fx.public}?split=test&q=alpha")
        assert public.status_code == 200 and "held-out alpha" in public.text


def test_a_failed_conversion_is_shown_with_its_reason(fx: Fixture) -> None:
    """A jsonl file that is not JSON: pending while it converts, then failed, never a 500."""
    broken = dataset(fx.owner, "viewer-broken", {"data/train.jsonl": b'{"a": 1}\nnot json\n'})
    states = []
    with httpx.Client(base_url=fx.url) as visitor:
        for _ in range(100):
            page = visitor.get(f"/datasets/{broken}")
            assert page.status_code == 200
            match = re.search(r'id="viewer-state">([^<]*)<', page.text)
            assert match, "no viewer state on the page"
            states.append(match.group(1))
            if "failed" in states[-1]:
                break
            time.sleep(0.1)
    assert all(s.startswith("Conversion pending") for s in states[:-1]), states
    assert states[-1].startswith("Conversion failed: data/train.jsonl: "), states
