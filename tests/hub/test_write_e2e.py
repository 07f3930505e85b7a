"""Uploads end to end with the real clients: huggingface_hub, the hf CLI, transformers and
datasets write to a live server and read back what they wrote (hf-protocol.md §6, §11, §12).

Every test runs once per `xet_mode`: "off" sends large files through the legacy LFS API
(HF_HUB_DISABLE_XET=1), "on" through Xet, the client's default. ATRIUM_TEST_XET picks a subset.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    constants,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
)

from tests.hub.readkit import Owner, big_bytes, new_owner
from tests.live import ROOT, LiveServer

XET_MODES = [m.strip() for m in os.environ.get("ATRIUM_TEST_XET", "off,on").split(",")]
MiB = 1024 * 1024


@pytest.fixture(params=XET_MODES, autouse=True)
def xet_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """ "off": large files go through the LFS batch API; "on": through Xet (§7.1)."""
    mode: str = request.param
    off = mode == "off"
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1" if off else "0")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", off)
    return mode


@pytest.fixture
def owner(server: LiveServer) -> Owner:
    return new_owner(server)


def new_repo(owner: Owner, repo_type: str = "model") -> str:
    repo_id = f"{owner.name}/w{secrets.token_hex(3)}"
    owner.api.create_repo(repo_id, repo_type=repo_type)
    return repo_id


def download(owner: Owner, repo_id: str, path: str, **kw: Any) -> bytes:
    local = hf_hub_download(repo_id, path, endpoint=owner.server.url, token=owner.token, **kw)
    return Path(local).read_bytes()


def test_upload_file_regular_and_large_read_back(owner: Owner, hf_home: Path) -> None:
    repo_id = new_repo(owner)
    weights = big_bytes(2 * MiB + 3, seed=3)
    source = hf_home / "model.safetensors"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(weights)
    owner.api.upload_file(path_or_fileobj=b'{"a": 1}', path_in_repo="config.json", repo_id=repo_id)
    info = owner.api.upload_file(
        path_or_fileobj=str(source), path_in_repo="model.safetensors", repo_id=repo_id
    )
    assert info.oid == owner.api.model_info(repo_id).sha and "/commit/" in info.commit_url
    files = {f.path: f for f in owner.api.list_repo_tree(repo_id)}
    assert files["model.safetensors"].lfs is not None and files["config.json"].lfs is None
    assert download(owner, repo_id, "model.safetensors") == weights
    assert download(owner, repo_id, "config.json") == b'{"a": 1}'


def test_upload_folder_of_300_files_with_patterns(
    owner: Owner, tmp_path: Path, hf_home: Path
) -> None:
    repo_id = new_repo(owner)
    folder = tmp_path / "many"
    for n in range(300):
        (folder / f"d{n % 7}").mkdir(parents=True, exist_ok=True)
        (folder / f"d{n % 7}" / f"f{n:03d}.txt").write_text(f"file {n}\n")
    (folder / "skip.log").write_text("ignored")
    (folder / "blob.bin").write_bytes(big_bytes(300_000, seed=9))
    owner.api.upload_folder(folder_path=folder, repo_id=repo_id, ignore_patterns=["*.log"])
    files = set(owner.api.list_repo_files(repo_id))
    assert len(files) == 302 and "skip.log" not in files and "blob.bin" in files
    # Re-uploading with delete_patterns replaces the text files of one folder.
    (folder / "new.txt").write_text("new")
    owner.api.upload_folder(
        folder_path=folder,
        repo_id=repo_id,
        allow_patterns=["new.txt"],
        delete_patterns=["d0/*"],
    )
    files = set(owner.api.list_repo_files(repo_id))
    assert "new.txt" in files and not any(f.startswith("d0/") for f in files)
    local = snapshot_download(repo_id, endpoint=owner.server.url, allow_patterns=["d1/*"])
    assert len(list(Path(local, "d1").iterdir())) == len(range(1, 300, 7))


def test_create_commit_with_deletes_and_copies(owner: Owner, hf_home: Path) -> None:
    repo_id = new_repo(owner)
    big = big_bytes(MiB, seed=4)
    owner.api.create_commit(
        repo_id,
        [
            CommitOperationAdd("keep.txt", b"keep"),
            CommitOperationAdd("logs/a.txt", b"a"),
            CommitOperationAdd("logs/b.txt", b"b"),
            CommitOperationAdd("gone.txt", b"gone"),
            CommitOperationAdd("w.bin", io.BytesIO(big)),
        ],
        commit_message="first",
    )
    second = owner.api.create_commit(
        repo_id,
        [
            CommitOperationDelete("gone.txt"),
            CommitOperationDelete("logs/", is_folder=True),
            CommitOperationCopy("keep.txt", "copies/keep.txt"),
            CommitOperationCopy("w.bin", "copies/w.bin"),
        ],
        commit_message="second",
        commit_description="deletes and copies",
    )
    files = set(owner.api.list_repo_files(repo_id))
    assert files == {".gitattributes", "keep.txt", "w.bin", "copies/keep.txt", "copies/w.bin"}
    assert download(owner, repo_id, "copies/w.bin") == big
    assert download(owner, repo_id, "copies/keep.txt") == b"keep"
    latest = owner.api.list_repo_commits(repo_id)[0]
    assert latest.commit_id == second.oid and latest.title == "second"
    assert latest.message == "deletes and copies"
    with pytest.raises(EntryNotFoundError):
        owner.api.delete_file("never.txt", repo_id)
    owner.api.delete_folder("copies", repo_id)
    assert "copies/w.bin" not in owner.api.list_repo_files(repo_id)


def test_stale_parent_commit_is_refused_with_412(owner: Owner) -> None:
    repo_id = new_repo(owner)
    parent = owner.api.model_info(repo_id).sha
    assert parent is not None
    owner.api.upload_file(path_or_fileobj=b"1", path_in_repo="a.txt", repo_id=repo_id)
    head = owner.api.model_info(repo_id).sha
    with pytest.raises(HfHubHTTPError) as caught:
        owner.api.create_commit(
            repo_id,
            [CommitOperationAdd("b.txt", b"2")],
            commit_message="stale",
            parent_commit=parent,
        )
    assert caught.value.response.status_code == 412
    assert owner.api.model_info(repo_id).sha == head
    done = owner.api.create_commit(
        repo_id, [CommitOperationAdd("b.txt", b"2")], commit_message="fresh", parent_commit=head
    )
    assert owner.api.model_info(repo_id).sha == done.oid


def test_create_pr_commits_to_a_pr_ref(owner: Owner, hf_home: Path) -> None:
    repo_id = new_repo(owner)
    main = owner.api.model_info(repo_id).sha
    info = owner.api.create_commit(
        repo_id, [CommitOperationAdd("pr.txt", b"pr")], commit_message="pr", create_pr=True
    )
    assert info.pr_num == 1 and info.pr_revision == "refs/pr/1"
    assert owner.api.model_info(repo_id).sha == main
    assert download(owner, repo_id, "pr.txt", revision="refs/pr/1") == b"pr"
    refs = owner.api.list_repo_refs(repo_id, include_pull_requests=True)
    assert [p.ref for p in refs.pull_requests or []] == ["refs/pr/1"]


def test_upload_folder_with_create_pr_opens_pr_refs(
    owner: Owner, tmp_path: Path, hf_home: Path
) -> None:
    repo_id = new_repo(owner)
    folder = tmp_path / "pr"
    folder.mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "w.bin").write_bytes(big_bytes(200_000, seed=5))
    info = owner.api.upload_folder(folder_path=folder, repo_id=repo_id, create_pr=True)
    assert info.pr_revision == "refs/pr/1"
    files = owner.api.list_repo_files(repo_id, revision="refs/pr/1")
    assert {"a.txt", "w.bin"} <= set(files)
    assert "a.txt" not in owner.api.list_repo_files(repo_id)
    details = owner.api.get_discussion_details(repo_id, 1)
    assert details.is_pull_request and details.git_reference == "refs/pr/1"


def test_readme_commit_updates_the_card_metadata(owner: Owner) -> None:
    repo_id = new_repo(owner)
    card = b"---\nlicense: apache-2.0\npipeline_tag: fill-mask\ntags:\n- e2e\n---\n# Card\n"
    owner.api.upload_file(path_or_fileobj=card, path_in_repo="README.md", repo_id=repo_id)
    info = owner.api.model_info(repo_id)
    assert info.pipeline_tag == "fill-mask" and "e2e" in (info.tags or [])
    assert info.card_data is not None and info.card_data.license == "apache-2.0"
    owner.api.delete_file("README.md", repo_id)
    assert owner.api.model_info(repo_id).pipeline_tag is None


def test_hf_cli_upload_and_download(owner: Owner, tmp_path: Path, xet_mode: str) -> None:
    repo_id = new_repo(owner)
    source = tmp_path / "cli.txt"
    source.write_text("from the cli")
    env = {
        **os.environ,
        "HF_ENDPOINT": owner.server.url,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_DISABLE_XET": "1" if xet_mode == "off" else "0",
    }
    hf = Path(sys.executable).with_name("hf")
    done = subprocess.run(
        [str(hf), "upload", repo_id, str(source), "cli.txt", "--token", owner.token],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert download(owner, repo_id, "cli.txt") == b"from the cli"


LIBRARIES = """
import json, sys
import torch, datasets
from transformers import BertConfig, BertModel

model_repo, dataset_repo, token = sys.argv[1:4]
torch.manual_seed(0)
config = BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                    intermediate_size=37)
model = BertModel(config).eval()
model.push_to_hub(model_repo, token=token)
model.push_to_hub(model_repo, token=token, revision="v2-branch")
ids = torch.tensor([[1, 5, 7, 9]])
with torch.no_grad():
    expected = model(ids).last_hidden_state
equal = []
for revision in (None, "v2-branch"):
    loaded = BertModel.from_pretrained(model_repo, revision=revision, token=token).eval()
    with torch.no_grad():
        equal.append(bool(torch.equal(loaded(ids).last_hidden_state, expected)))

rows = {"text": ["a", "b", "c"], "label": [0, 1, 0]}
datasets.Dataset.from_dict(rows).push_to_hub(dataset_repo, token=token)
loaded = datasets.load_dataset(dataset_repo, split="train", token=token)
print(json.dumps({"equal": equal, "rows": loaded.to_dict()}))
"""


def test_transformers_and_datasets_push_to_hub_then_load(
    owner: Owner, tmp_path: Path, xet_mode: str
) -> None:
    model_repo, dataset_repo = f"{owner.name}/tiny-bert", f"{owner.name}/tiny-table"
    env = {
        **os.environ,
        "HF_ENDPOINT": owner.server.url,
        "HF_HOME": str(tmp_path / "hf"),
        "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"),
        "HF_DATASETS_CACHE": str(tmp_path / "datasets"),
        "HF_HUB_DISABLE_XET": "1" if xet_mode == "off" else "0",
    }
    done = subprocess.run(
        [sys.executable, "-c", LIBRARIES, model_repo, dataset_repo, owner.token],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["equal"] == [True, True]
    assert result["rows"] == {"text": ["a", "b", "c"], "label": [0, 1, 0]}
    files = HfApi(endpoint=owner.server.url, token=owner.token).list_repo_files(model_repo)
    assert {"config.json", "model.safetensors", "README.md"} <= set(files)
