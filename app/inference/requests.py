"""Inference API request bodies: checked in the API process, so bad input is a fast 400 that
never reaches a worker, in the shapes huggingface_hub's InferenceClient sends them."""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass
from typing import Any

from app.inference.errors import InputError
from app.inference.protocol import Item

MAX_INPUTS = 256  # strings in one request; more should be several requests
TEXT_TASKS = {
    "feature-extraction", "text-classification", "token-classification", "fill-mask",
    "zero-shot-classification", "summarization", "translation", "text2text-generation",
}  # fmt: skip
# What text-generation understands (TGI names). Anything else the client sends is answered with
# the message InferenceClient.text_generation parses to drop those parameters and retry
# (MODEL_KWARGS_NOT_USED_REGEX in huggingface_hub/inference/_client.py).
GENERATION_PARAMS = {
    "max_new_tokens", "temperature", "top_p", "top_k", "do_sample", "repetition_penalty",
    "return_full_text", "seed", "stop", "details", "truncate",
}  # fmt: skip
FEATURE_TOP_LEVEL = {"normalize", "prompt_name", "truncate", "truncation_direction"}


@dataclass(frozen=True)
class HfRequest:
    task: str
    item: Item
    wait_for_model: bool
    stream: bool = False


def parse_body(task: str, raw: bytes) -> HfRequest:
    """Parse and check `{"inputs", "parameters", "options"}` for task."""
    body = _json(raw)
    if not isinstance(body, dict) or "inputs" not in body:
        raise InputError('The body must be a JSON object with "inputs"')
    params = body.get("parameters") or {}
    if not isinstance(params, dict):
        raise InputError('"parameters" must be a JSON object')
    if task in ("feature-extraction", "sentence-similarity"):
        # feature-extraction sends its parameters at the top level of the body.
        params = {**params, **{k: body[k] for k in FEATURE_TOP_LEVEL if k in body}}
    if task == "feature-extraction" and isinstance(body["inputs"], dict):
        # InferenceClient.sentence_similarity posts to the model URL itself, not to
        # /pipeline/sentence-similarity, so the inputs' shape names the task.
        task = "sentence-similarity"
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise InputError('"options" must be a JSON object')
    inputs = check_inputs(task, body["inputs"], params)
    return HfRequest(
        task=task,
        item=Item(inputs, check_params(task, params)),
        wait_for_model=bool(options.get("wait_for_model", True)),
        stream=bool(body.get("stream")),
    )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InputError("The body is not valid JSON") from None


def check_inputs(task: str, inputs: Any, params: dict[str, Any]) -> Any:
    if task in TEXT_TASKS:
        return _texts(task, inputs)
    if task == "text-generation":
        if not isinstance(inputs, str) or not inputs:
            raise InputError("text-generation takes one non-empty string as inputs")
        return inputs
    if task == "question-answering":
        if not (
            isinstance(inputs, dict)
            and isinstance(inputs.get("question"), str)
            and isinstance(inputs.get("context"), str)
        ):
            raise InputError('question-answering takes inputs {"question": str, "context": str}')
        return {"question": inputs["question"], "context": inputs["context"]}
    if task == "sentence-similarity":
        sentences = inputs.get("sentences") if isinstance(inputs, dict) else None
        source = inputs.get("source_sentence") if isinstance(inputs, dict) else None
        if not isinstance(source, str) or not _is_texts(sentences):
            raise InputError(
                'sentence-similarity takes inputs {"source_sentence": str, "sentences": [str]}'
            )
        return {"source_sentence": source, "sentences": sentences}
    raise InputError(f"task {task} is not supported")


def _is_texts(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


def _texts(task: str, inputs: Any) -> Any:
    if isinstance(inputs, str) and inputs:
        return inputs
    if _is_texts(inputs):
        if len(inputs) > MAX_INPUTS:
            raise InputError(f"Too many inputs: {len(inputs)}; at most {MAX_INPUTS} per request")
        return inputs
    raise InputError(f"{task} takes a non-empty string or a list of strings as inputs")


def check_params(task: str, params: dict[str, Any]) -> dict[str, Any]:
    if task == "text-generation":
        unknown = sorted(set(params) - GENERATION_PARAMS)
        if unknown:
            raise InputError(f"The following `model_kwargs` are not used by the model: {unknown}")
        stop = params.get("stop")
        if isinstance(stop, str):
            params = {**params, "stop": [stop]}
    if task in ("zero-shot-classification", "zero-shot-image-classification"):
        labels = params.get("candidate_labels")
        if isinstance(labels, str):
            labels = [part.strip() for part in labels.split(",") if part.strip()]
        if not _is_texts(labels):
            raise InputError(f"{task} needs parameters.candidate_labels")
        params = {**params, "candidate_labels": labels}
    for name in ("top_k", "max_new_tokens"):
        value = params.get(name)
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InputError(f"parameters.{name} must be a positive integer")
    return params


def tgi_details(value: dict[str, Any]) -> dict[str, Any]:
    """The `details` object of a TGI answer, from the worker's generation result."""
    finish = "length" if value["finish_reason"] == "length" else "eos_token"
    return {
        "finish_reason": finish,
        "generated_tokens": len(value["tokens"]),
        "seed": value.get("seed"),
        "prefill": [],
        "tokens": [],
    }


def parse_image_body(raw: bytes, content_type: str) -> HfRequest:
    """Image tasks take the image itself as the body, or, with parameters, JSON whose
    `inputs` is the base64 image (HFInferenceBinaryInputTask in huggingface_hub)."""
    params: dict[str, Any] = {}
    options: dict[str, Any] = {}
    image = raw
    if content_type.startswith("application/json"):
        body = _json(raw)
        if not isinstance(body, dict) or not isinstance(body.get("inputs"), str):
            raise InputError('The body must be an image, or JSON with a base64 image in "inputs"')
        try:
            image = base64.b64decode(body["inputs"], validate=True)
        except (binascii.Error, ValueError):
            raise InputError('"inputs" is not base64') from None
        params = body.get("parameters") or {}
        options = body.get("options") or {}
        if not isinstance(params, dict) or not isinstance(options, dict):
            raise InputError('"parameters" and "options" must be JSON objects')
    _check_image(image)
    return HfRequest(
        task="", item=Item(image, params), wait_for_model=bool(options.get("wait_for_model", True))
    )


def _check_image(data: bytes) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, ValueError):
        raise InputError("The body is not an image this server can read") from None
