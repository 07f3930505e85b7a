"""Models pushed every way a user pushes them are served: `upload_folder` with Xet on (the
client's default), with `HF_HUB_DISABLE_XET=1` (LFS), and `git push` with git-lfs. Each one
then answers through InferenceClient, raw HTTP and the OpenAI client.

The weights of a Xet upload exist only as xorbs: the test checks they were stored that way, so
it covers the path the default client takes (the worker reads them through `app.repos.content`).
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import httpx
import pytest
from huggingface_hub import HfApi, InferenceClient, constants

from app.repos import content
from app.repos.models import Repo
from app.repos.service import find_entry, get_commit, resolve_revision
from tests.git.gitkit import Git, repo_url
from tests.hub.readkit import Owner
from tests.inference import kit
from tests.live import LiveServer

TIMEOUT = 120
WAYS = ("xet", "lfs", "git")


def save(task: str, folder: Path) -> Path:
    """A tiny model of task, its weights made unique by a nonce in their metadata: content is
    deduplicated across the hub, so weights other tests stored through LFS would be read
    from there, and the Xet-only path would go untested."""
    from safetensors.torch import load_file, save_file

    files, lfs = kit.model_files(task)
    for name, data in {**files, **lfs}.items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if name.endswith(".safetensors"):
            metadata = {"format": "pt", "nonce": secrets.token_hex(8)}
            save_file(load_file(target), target, metadata=metadata)
    return folder


def push(
    way: str, owner: Owner, folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    repo_id = f"{owner.name}/pushed-{way}-{secrets.token_hex(3)}"
    api = HfApi(endpoint=owner.server.url, token=owner.token)
    api.create_repo(repo_id)
    if way in ("xet", "lfs"):
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", way == "lfs")
        api.upload_folder(folder_path=folder, repo_id=repo_id)
        return repo_id
    git = Git(tmp_path / "git-home")
    git.run("lfs", "install", "--skip-repo")
    work = git.clone(repo_url(owner.server, repo_id, owner.token), tmp_path / "work")
    for path in folder.iterdir():
        shutil.copy(path, work / path.name)
    # The repo's .gitattributes (the Hub's defaults) already sends *.safetensors to LFS.
    git.commit_files(work, {}, "add the model")
    git.run("push", "-q", "origin", "HEAD:main", cwd=work)
    return repo_id


def stored_as(server: LiveServer, repo_id: str, path: str) -> str:
    app = server.app()
    namespace, name = repo_id.split("/")
    with app.state.sessionmaker() as session:
        repo = session.query(Repo).filter_by(namespace=namespace, name=name).one()
        tree = get_commit(session, resolve_revision(session, repo, "main")).tree_sha
        entry = find_entry(session, tree, path)
        assert entry is not None
        return content.locate(app.state.blobs, entry, session).kind


@pytest.mark.parametrize("way", WAYS)
def test_a_pushed_classifier_answers_through_every_client(
    way: str, live: LiveServer, owner: Owner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_id = push(
        way, owner, save("text-classification", tmp_path / "model"), tmp_path, monkeypatch
    )
    assert stored_as(live, repo_id, "model.safetensors") == ("xet" if way == "xet" else "lfs")
    url = f"{live.url}/models/{repo_id}"
    result = InferenceClient(model=url, token=owner.token, timeout=TIMEOUT).text_classification(
        "a great movie"
    )
    assert {r.label for r in result} == set(kit.LABELS["text-classification"])
    raw = httpx.post(url, json={"inputs": "the cat"}, timeout=TIMEOUT)
    assert raw.status_code == 200, raw.text
    assert {r["label"] for r in raw.json()[0]} == set(kit.LABELS["text-classification"])


@pytest.mark.parametrize("way", WAYS)
def test_a_pushed_chat_model_answers_the_openai_client(
    way: str, live: LiveServer, owner: Owner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai

    folder = save("text-generation", tmp_path / "model")
    repo_id = push(way, owner, folder, tmp_path, monkeypatch)
    oai = openai.OpenAI(base_url=f"{live.url}/v1", api_key=owner.token, timeout=TIMEOUT)
    answer = oai.chat.completions.create(
        model=repo_id, messages=[{"role": "user", "content": "hello"}], max_tokens=4
    )
    assert isinstance(answer.choices[0].message.content, str)
    assert answer.usage is not None and answer.usage.completion_tokens <= 4


def test_a_safetensors_header_with_a_non_integer_shape_is_refused_clearly(
    live: LiveServer, owner: Owner, tmp_path: Path
) -> None:
    import json
    import struct

    header = json.dumps({"w": {"dtype": "F32", "shape": ["a", 2], "data_offsets": [0, 8]}})
    weights = struct.pack("<Q", len(header)) + header.encode() + bytes(8)
    repo_id = f"{owner.name}/bad-shape-{secrets.token_hex(3)}"
    api = HfApi(endpoint=owner.server.url, token=owner.token)
    api.create_repo(repo_id)
    folder = save("text-classification", tmp_path / "model")
    (folder / "model.safetensors").write_bytes(weights)
    api.upload_folder(folder_path=folder, repo_id=repo_id)
    answer = httpx.post(f"{live.url}/models/{repo_id}", json={"inputs": "a"}, timeout=TIMEOUT)
    assert 400 <= answer.status_code < 500, answer.text
    assert "shape" in answer.json()["error"]


def test_openai_routes_answer_errors_in_openais_shape(live: LiveServer, owner: Owner) -> None:
    """The `openai` client then shows the message itself, not only the status code."""
    import openai

    oai = openai.OpenAI(base_url=f"{live.url}/v1", api_key=owner.token, timeout=TIMEOUT)
    with pytest.raises(openai.NotFoundError) as missing:
        oai.chat.completions.create(
            model=f"{owner.name}/no-such-model", messages=[{"role": "user", "content": "hi"}]
        )
    assert "not found" in str(missing.value).lower()
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["code"] == "model_not_found"
    assert missing.value.body["type"] == "not_found_error"
    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(
            model="not-a-repo-id", messages=[{"role": "user", "content": "hi"}]
        )
    assert "namespace/name" in bad.value.message


def gpt2_folder(folder: Path, n_positions: int = 32) -> Path:
    """A tiny GPT-2 with GPT-2's own byte-level tokenizer, which has no pad token."""
    import torch
    import transformers as tf
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    torch.manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    vocab = {char: index for index, char in enumerate(bytes_to_unicode().values())}
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = tf.GPT2Tokenizer(vocab=vocab, merges=[])  # one token per byte
    tokenizer.chat_template = kit.CHAT_TEMPLATE
    assert tokenizer.pad_token is None
    tokenizer.save_pretrained(folder)
    end = vocab["<|endoftext|>"]
    config = tf.GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=2, n_head=2,
                           n_positions=n_positions, bos_token_id=end, eos_token_id=end)  # fmt: skip
    tf.GPT2LMHeadModel(config).save_pretrained(folder)
    (folder / "README.md").write_bytes(kit.card("text-generation"))
    return folder


@pytest.fixture(scope="module")
def gpt2(live: LiveServer, owner: Owner, tmp_path_factory: pytest.TempPathFactory) -> str:
    repo_id = f"{owner.name}/gpt2-style-{secrets.token_hex(3)}"
    api = HfApi(endpoint=owner.server.url, token=owner.token)
    api.create_repo(repo_id)
    api.upload_folder(folder_path=gpt2_folder(tmp_path_factory.mktemp("gpt2")), repo_id=repo_id)
    return repo_id


def test_a_tokenizer_without_a_pad_token_generates_and_chats(
    live: LiveServer, owner: Owner, gpt2: str
) -> None:
    client = InferenceClient(model=f"{live.url}/models/{gpt2}", token=owner.token, timeout=TIMEOUT)
    assert isinstance(client.text_generation("the cat", max_new_tokens=4), str)
    answer = client.chat_completion([{"role": "user", "content": "hi"}], max_tokens=4)
    assert isinstance(answer.choices[0].message.content, str)


def test_generation_is_clamped_to_the_context_and_a_prompt_past_it_is_a_400(
    live: LiveServer, owner: Owner, gpt2: str
) -> None:
    url = f"{live.url}/models/{gpt2}"
    auth = {"Authorization": f"Bearer {owner.token}"}
    prompt = "a" * 28  # 28 tokens (one per byte) of a 32-token context: room for 4 more
    body = {"inputs": prompt, "parameters": {"max_new_tokens": 16, "details": True}}
    answer = httpx.post(url, json=body, headers=auth, timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text
    assert answer.json()[0]["details"]["generated_tokens"] <= 4
    too_long = httpx.post(url, json={"inputs": "a" * 40}, headers=auth, timeout=TIMEOUT)
    assert too_long.status_code == 400
    assert "context holds 32" in too_long.json()["error"]


def test_openai_model_list_names_only_what_it_can_serve_and_how(
    live: LiveServer, owner: Owner, gpt2: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai

    classifier = push(
        "lfs", owner, save("text-classification", tmp_path / "clf"), tmp_path, monkeypatch
    )
    oai = openai.OpenAI(base_url=f"{live.url}/v1", api_key=owner.token, timeout=TIMEOUT)
    listed = {m.id: m for m in oai.models.list()}
    assert gpt2 in listed and classifier not in listed
    assert listed[gpt2].model_dump()["endpoints"] == ["chat.completions", "completions"]
