"""What a model's files say about it (`app.cards.derived`): the task and library inferred from
config.json when the card names none, transformersInfo, and the safetensors parameter counts,
as huggingface_hub's ModelInfo reads them. Models are pushed with the default client."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from huggingface_hub import HfApi
from safetensors import safe_open

from tests.inference import kit
from tests.live import LiveServer


def model_folder(folder: Path, task: str, *, card: bool) -> Path:
    files, lfs = kit.model_files(task)
    if not card:
        files.pop("README.md")
    for name, data in {**files, **lfs}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def parameters(path: Path) -> int:
    total = 0
    with safe_open(str(path), "np") as weights:
        for name in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
            size = 1
            for dim in weights.get_slice(name).get_shape():
                size *= dim
            total += size
    return total


@pytest.fixture
def api(server: LiveServer) -> tuple[HfApi, str]:
    name, token = server.new_user()
    return HfApi(endpoint=server.url, token=token), name


def test_a_model_without_a_card_gets_its_task_library_and_counts_from_its_files(
    api: tuple[HfApi, str], tmp_path: Path
) -> None:
    hub, owner = api
    repo_id = f"{owner}/nocard-{secrets.token_hex(3)}"
    hub.create_repo(repo_id)
    folder = model_folder(tmp_path, "text-classification", card=False)
    hub.upload_folder(folder_path=folder, repo_id=repo_id)
    info = hub.model_info(repo_id)
    assert info.pipeline_tag == "text-classification"
    assert info.library_name == "transformers"
    assert info.transformers_info is not None
    assert info.transformers_info.auto_model == "AutoModelForSequenceClassification"
    assert info.transformers_info.processor == "AutoTokenizer"
    assert info.safetensors is not None
    total = parameters(folder / "model.safetensors")
    assert info.safetensors.total == total and info.safetensors.parameters == {"F32": total}
    found = {m.id for m in hub.list_models(author=owner, pipeline_tag="text-classification")}
    assert repo_id in found
    assert "text-classification" in (info.tags or [])


def test_the_cards_own_task_wins_over_the_inferred_one(
    api: tuple[HfApi, str], tmp_path: Path
) -> None:
    hub, owner = api
    repo_id = f"{owner}/card-{secrets.token_hex(3)}"
    hub.create_repo(repo_id)
    folder = model_folder(tmp_path, "text-classification", card=False)
    (folder / "README.md").write_bytes(kit.card("zero-shot-classification"))
    hub.upload_folder(folder_path=folder, repo_id=repo_id)
    info = hub.model_info(repo_id)
    assert info.pipeline_tag == "zero-shot-classification"
    assert info.transformers_info is not None
    assert info.transformers_info.pipeline_tag == "zero-shot-classification"
