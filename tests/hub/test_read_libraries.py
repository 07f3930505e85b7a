"""transformers and datasets read from the server (hf-protocol.md §13.1, §13.2).

Both libraries copy HF_ENDPOINT into module constants when imported, so each check runs in a
fresh interpreter pointed at the live server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.hub.readkit import make_repo, new_owner
from tests.live import ROOT, LiveServer

SCRIPT = """
import json, sys
import datasets
from transformers import AutoConfig

model, dataset = sys.argv[1], sys.argv[2]
config = AutoConfig.from_pretrained(model)
train = datasets.load_dataset(dataset, split="train")
streamed = datasets.load_dataset(dataset, split="train", streaming=True)
out = {"hidden": config.hidden_size, "rows": train.to_list(), "streamed": list(streamed)}
print(json.dumps(out))
"""
CONFIG = {
    "model_type": "bert",
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "vocab_size": 99,
}


def test_transformers_config_and_datasets_load_from_the_server(
    server: LiveServer, tmp_path: Path
) -> None:
    owner = new_owner(server)
    make_repo(owner, "tiny", {"config.json": json.dumps(CONFIG).encode()})
    make_repo(
        owner,
        "table",
        {"README.md": b"---\nlicense: mit\n---\n", "data/train.csv": b"a,b\n1,2\n3,4\n"},
        repo_type="dataset",
    )
    env = {
        **os.environ,
        "HF_ENDPOINT": server.url,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "HF_DATASETS_CACHE": str(tmp_path / "datasets"),
        "HF_HUB_DISABLE_XET": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, f"{owner.name}/tiny", f"{owner.name}/table"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert result == {"hidden": 32, "rows": rows, "streamed": rows}
