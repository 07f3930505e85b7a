"""`datasets` against the live server: `load_dataset` of each format gives the rows a local
`load_dataset` of the same files gives, and `push_to_hub` with several configs and splits
round-trips and shows in the viewer.

datasets and huggingface_hub copy HF_ENDPOINT into constants when imported, so the client runs
in a fresh interpreter pointed at the server (as tests/hub/test_read_libraries.py does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pytest

from tests.datasets.kit import (
    ViewerClient,
    csv_bytes,
    dataset,
    jsonl_bytes,
    parquet_bytes,
    people,
    png_bytes,
)
from tests.hub.readkit import Owner, new_owner
from tests.live import ROOT, LiveServer

# Loads a repo and the same files from a local folder; prints both as JSON, images as
# (size, mode, pixel bytes) so that decoding is compared, not just file names.
LOAD_SCRIPT = """
import hashlib, json, sys
import datasets

def plain(value):
    if hasattr(value, "tobytes"):
        return [list(value.size), value.mode, hashlib.sha256(value.tobytes()).hexdigest()]
    return value

def rows(ds):
    return {split: [{k: plain(v) for k, v in row.items()} for row in part]
            for split, part in ds.items()}

repo, local = sys.argv[1], sys.argv[2]
remote = rows(datasets.load_dataset(repo))
here = rows(datasets.load_dataset(local))
print(json.dumps({"remote": remote, "local": here}))
"""

PUSH_SCRIPT = """
import json, sys
import datasets

repo, token = sys.argv[1], sys.argv[2]
alpha = datasets.DatasetDict({
    "train": datasets.Dataset.from_dict({"x": [1, 2, 3], "y": ["a", "b", "c"]}),
    "test": datasets.Dataset.from_dict({"x": [9], "y": ["z"]}),
})
features = datasets.Features({"label": datasets.ClassLabel(names=["no", "yes"]),
                              "image": datasets.Image()})
beta = datasets.Dataset.from_dict(
    {"label": [1, 0], "image": [{"bytes": bytes.fromhex(h), "path": None} for h in sys.argv[3:5]]},
    features=features,
)
alpha.push_to_hub(repo, config_name="alpha", token=token)
beta.push_to_hub(repo, config_name="beta", split="validation", token=token)
out = {}
for config in ("alpha", "beta"):
    loaded = datasets.load_dataset(repo, config, token=token)
    out[config] = {split: [{k: (v.size if k == "image" else v) for k, v in row.items()}
                           for row in part] for split, part in loaded.items()}
print(json.dumps(out))
"""


def run_client(server: LiveServer, tmp_path: Path, script: str, *args: str) -> Any:
    env = {
        **os.environ,
        "HF_ENDPOINT": server.url,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "HF_DATASETS_CACHE": str(tmp_path / "datasets"),
    }
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


TABLE = pa.Table.from_pylist(people(120))
FORMATS: dict[str, dict[str, bytes]] = {
    "parquet": {
        "data/train-00000-of-00001.parquet": parquet_bytes(TABLE.slice(0, 100), 30),
        "data/test-00000-of-00001.parquet": parquet_bytes(TABLE.slice(100)),
    },
    "csv": {"train.csv": csv_bytes(people(20)), "test.csv": csv_bytes(people(3, offset=50))},
    "jsonl": {"data/train.jsonl": jsonl_bytes([{"t": f"s{i}", "n": [i, i]} for i in range(15)])},
    "imagefolder": {
        "train/cat/a.png": png_bytes((255, 0, 0)),
        "train/dog/b.png": png_bytes((0, 255, 0), (5, 2)),
        "validation/cat/c.png": png_bytes((0, 0, 255)),
        "validation/dog/d.png": png_bytes((9, 9, 9)),
    },
}


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_load_dataset_gives_the_rows_of_the_local_files(
    server: LiveServer, owner: Owner, tmp_path: Path, fmt: str
) -> None:
    files = FORMATS[fmt]
    repo = dataset(owner, f"load-{fmt}", lfs=files)
    local = tmp_path / "local"
    for path, content in files.items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_bytes(content)
    result = run_client(server, tmp_path, LOAD_SCRIPT, repo, str(local))
    assert result["remote"] == result["local"]
    assert all(result["remote"].values())  # every split has rows
    # The viewer sees the same splits and rows as the client.
    viewer = ViewerClient(server.url, owner.token)
    splits = [s["split"] for s in viewer.json("splits", dataset=repo)["splits"]]
    assert sorted(splits) == sorted(result["remote"])
    if fmt != "imagefolder":
        for split, rows in result["remote"].items():
            assert viewer.rows(dataset=repo, split=split) == rows


def test_push_to_hub_with_several_configs_and_splits_round_trips(
    server: LiveServer, owner: Owner, tmp_path: Path
) -> None:
    repo = f"{owner.name}/pushed"
    red, blue = png_bytes((255, 0, 0), (3, 2)), png_bytes((0, 0, 255), (2, 2))
    result = run_client(server, tmp_path, PUSH_SCRIPT, repo, owner.token, red.hex(), blue.hex())
    assert result == {
        "alpha": {
            "train": [{"x": 1, "y": "a"}, {"x": 2, "y": "b"}, {"x": 3, "y": "c"}],
            "test": [{"x": 9, "y": "z"}],
        },
        "beta": {"validation": [{"label": 1, "image": [3, 2]}, {"label": 0, "image": [2, 2]}]},
    }
    viewer = ViewerClient(server.url, owner.token)
    splits = viewer.json("splits", dataset=repo)["splits"]
    assert [(s["config"], s["split"]) for s in splits] == [
        ("alpha", "train"),
        ("alpha", "test"),
        ("beta", "validation"),
    ]
    assert viewer.rows(dataset=repo, config="alpha", split="test") == [{"x": 9, "y": "z"}]
    body = viewer.json("rows", dataset=repo, config="beta", split="validation")
    features = {f["name"]: f["type"] for f in body["features"]}
    assert features["label"] == {"names": ["no", "yes"], "_type": "ClassLabel"}
    assert features["image"] == {"_type": "Image"}
    auth = {"Authorization": f"Bearer {owner.token}"}
    images = [httpx.get(r["row"]["image"]["src"], headers=auth) for r in body["rows"]]
    assert [(i.headers["content-type"], i.content) for i in images] == [
        ("image/png", red),
        ("image/png", blue),
    ]
