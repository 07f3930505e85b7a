"""Task handlers over a loaded model (worker side): one batch of requests in, one outcome each.

A `Runner` owns the model, its tokenizer and the device. Handlers take the items of one batch
(same task and parameters), validate what only the tokenizer can check (token limits, a mask
token), run the model once for every valid input, and answer the Inference API's JSON shapes
(huggingface_hub/inference/_client.py parses them).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoImageProcessor,
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForImageClassification,
    AutoModelForMaskedLM,
    AutoModelForQuestionAnswering,
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    AutoModelForTokenClassification,
    AutoProcessor,
    AutoTokenizer,
    pipeline,
)

from app.inference.errors import InputError, UnsupportedModel
from app.inference.generation import OnToken, generate
from app.inference.protocol import Item, Outcome

MODEL_CLASSES: dict[str, Any] = {
    "feature-extraction": AutoModel,
    "sentence-similarity": AutoModel,
    "text-classification": AutoModelForSequenceClassification,
    "zero-shot-classification": AutoModelForSequenceClassification,
    "token-classification": AutoModelForTokenClassification,
    "question-answering": AutoModelForQuestionAnswering,
    "fill-mask": AutoModelForMaskedLM,
    "text-generation": AutoModelForCausalLM,
    "text2text-generation": AutoModelForSeq2SeqLM,
    "summarization": AutoModelForSeq2SeqLM,
    "translation": AutoModelForSeq2SeqLM,
    "image-classification": AutoModelForImageClassification,
    "zero-shot-image-classification": AutoModel,
}
SEQ2SEQ_KEYS = {
    "text2text-generation": "generated_text",
    "summarization": "summary_text",
    "translation": "translation_text",
}
IMAGE_TASKS = ("image-classification", "zero-shot-image-classification")


def load_runner(
    task: str,
    root: Path,
    device: torch.device,
    dtype: torch.dtype,
    *,
    adapter: Path | None = None,
    max_input_tokens: int,
    max_new_tokens: int,
    quantize: str = "",
) -> Runner:
    """Load weights from a snapshot folder (the base model's when `adapter` is given)."""
    cls = MODEL_CLASSES.get(task)
    if cls is None:
        raise UnsupportedModel(f"task {task} cannot be served")
    options = _quantization(quantize, device)
    model = cls.from_pretrained(
        root, dtype=dtype, use_safetensors=_has_safetensors(root), **options
    )
    tokenizer_root = adapter if adapter and (adapter / "tokenizer_config.json").exists() else root
    tokenizer = _preprocessor(task, tokenizer_root)
    if adapter is not None:
        model = _apply_adapter(model, adapter)
    if not options:  # a quantized model is already placed by accelerate
        model.to(device)
    model.eval()
    return Runner(task, model, tokenizer, device, _pooling(root), max_input_tokens, max_new_tokens)


def _preprocessor(task: str, root: Path) -> Any:
    """The tokenizer of a text model; the image processor (and, for CLIP, the processor
    with its tokenizer) of an image model."""
    if task == "image-classification":
        return AutoImageProcessor.from_pretrained(root)
    if task == "zero-shot-image-classification":
        return AutoProcessor.from_pretrained(root)
    return AutoTokenizer.from_pretrained(root)


def _quantization(quantize: str, device: torch.device) -> dict[str, Any]:
    """from_pretrained options for 8-bit/4-bit weights (bitsandbytes needs CUDA)."""
    if not quantize:
        return {}
    if device.type != "cuda":
        raise UnsupportedModel("ATRIUM_INFERENCE_QUANTIZE needs a CUDA device")
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_8bit=quantize == "8bit", load_in_4bit=quantize == "4bit")
    return {"quantization_config": config, "device_map": {"": device.index or 0}}


def _has_safetensors(root: Path) -> bool:
    return any(root.glob("*.safetensors"))


def _apply_adapter(model: Any, adapter: Path) -> Any:
    try:
        from peft import PeftModel
    except ImportError:
        raise UnsupportedModel("serving adapter repos needs the `peft` package") from None
    # Merged once at load, so a batch costs the same as on the base model.
    return PeftModel.from_pretrained(model, adapter).merge_and_unload()


def _pooling(root: Path) -> tuple[str, bool] | None:
    """(mode, normalize) of a sentence-transformers repo (modules.json), else None."""
    modules_file = root / "modules.json"
    if not modules_file.exists():
        return None
    modules = json.loads(modules_file.read_text())
    mode, normalize = "mean", False
    for module in modules:
        kind = str(module.get("type", ""))
        if kind.endswith("Pooling"):
            config_file = root / module.get("path", "") / "config.json"
            config = json.loads(config_file.read_text()) if config_file.exists() else {}
            if config.get("pooling_mode_cls_token"):
                mode = "cls"
            elif config.get("pooling_mode_max_tokens"):
                mode = "max"
        normalize = normalize or kind.endswith("Normalize")
    return mode, normalize


NO_LIMIT = 10**9  # tokenizers without a limit report a huge model_max_length (1e30)


def context_window(model: Any, tokenizer: Any) -> int | None:
    """Tokens the model attends to at once: its position embeddings, or its tokenizer's limit
    when that is smaller; None when neither says."""
    config = model.config
    limits = [
        value
        for value in (
            getattr(config, "max_position_embeddings", None),
            getattr(config, "n_positions", None),
            getattr(tokenizer, "model_max_length", None),
        )
        if isinstance(value, int) and 0 < value < NO_LIMIT
    ]
    return min(limits) if limits else None


def _pad_like_pipelines(model: Any, tokenizer: Any) -> None:
    """As transformers' pipelines do: a tokenizer without a pad token (the GPT-2 family) pads
    with its end-of-sequence token, on the left for a decoder, so a batch of prompts (or one
    prompt through `pad`) never fails with "Asking to pad but the tokenizer does not have a
    padding token"."""
    if not hasattr(tokenizer, "pad_token"):
        return  # none, or an image processor: nothing is padded with tokens
    if tokenizer.pad_token is None and getattr(tokenizer, "eos_token", None) is not None:
        tokenizer.pad_token = tokenizer.eos_token
    if not getattr(model.config, "is_encoder_decoder", False) and _is_decoder(model):
        tokenizer.padding_side = "left"


def _is_decoder(model: Any) -> bool:
    return any(
        str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in model.config.architectures or []
    )


class Runner:
    """A model on a device and the handlers of every task it can serve."""

    def __init__(
        self,
        task: str,
        model: Any,
        tokenizer: Any,
        device: torch.device,
        pooling: tuple[str, bool] | None,
        max_input_tokens: int,
        max_new_tokens: int,
    ):
        self.task = task
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.pooling = pooling
        self.max_input_tokens = max_input_tokens
        self.max_new_tokens = max_new_tokens
        self.context = context_window(model, tokenizer)
        self._pipelines: dict[str, Any] = {}
        _pad_like_pipelines(model, tokenizer)

    def run(self, task: str, items: list[Item]) -> list[Outcome]:
        handler: Callable[[list[Item]], list[Outcome]] | None = getattr(
            self, "_" + task.replace("-", "_"), None
        )
        if handler is None:
            if task in SEQ2SEQ_KEYS:
                return self._seq2seq(task, items)
            return [Outcome(status=400, message=f"task {task} is not supported")] * len(items)
        return handler(items)

    def stream(self, task: str, item: Item, on_token: OnToken) -> Outcome:
        """Generate for one request, calling on_token as tokens are made."""
        try:
            return Outcome(self._generate(task, item, on_token))
        except InputError as exc:
            return Outcome(status=400, message=exc.message)

    # -- encoders ---------------------------------------------------------------------------

    def _encode(self, texts: list[str], truncate: bool, pair: list[str] | None = None) -> Any:
        """Tokenize a batch; an input past the token limit is refused unless truncation asked."""
        limit = min(self.max_input_tokens, self.tokenizer.model_max_length or 10**9)
        args = (texts, pair) if pair is not None else (texts,)
        encoded = self.tokenizer(*args, truncation=truncate, max_length=limit if truncate else None)
        for ids in encoded["input_ids"]:
            if len(ids) > limit:
                raise InputError(
                    f"Input is too long: {len(ids)} tokens, the limit is {limit}; "
                    "send shorter inputs or set parameters.truncate=true"
                )
        return self.tokenizer.pad(encoded, return_tensors="pt").to(self.device)

    def _each(self, items: list[Item], work: Callable[[list[Item]], list[Any]]) -> list[Outcome]:
        """Run the batch; if it fails on input, run each item alone so only the bad one fails."""
        try:
            return [Outcome(value) for value in work(items)]
        except InputError as exc:
            if len(items) == 1:
                return [Outcome(status=400, message=exc.message)]
        return [self._each([item], work)[0] for item in items]

    def _hidden(self, texts: list[str], truncate: bool) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = self._encode(texts, truncate)
        with torch.inference_mode():
            out = self.model(**encoded)
        return out.last_hidden_state, encoded["attention_mask"]

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor, normalize: bool) -> torch.Tensor:
        mode = self.pooling[0] if self.pooling else "mean"
        if mode == "cls":
            pooled = hidden[:, 0]
        elif mode == "max":
            pooled = hidden.masked_fill(mask.unsqueeze(-1) == 0, -1e9).max(dim=1).values
        else:
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1) if normalize else pooled

    # -- tasks ------------------------------------------------------------------------------

    def _feature_extraction(self, items: list[Item]) -> list[Outcome]:
        def work(batch: list[Item]) -> list[Any]:
            texts, spans = _flatten(batch)
            hidden, mask = self._hidden(texts, bool(batch[0].params.get("truncate")))
            if self.pooling is None:  # plain encoders answer token embeddings
                rows: list[Any] = [
                    hidden[i, : int(mask[i].sum())].float().tolist() for i in range(len(texts))
                ]
            else:
                normalize = batch[0].params.get("normalize", self.pooling[1])
                rows = self._pool(hidden, mask, bool(normalize)).float().tolist()
            return _unflatten(batch, spans, rows)

        return self._each(items, work)

    def _sentence_similarity(self, items: list[Item]) -> list[Outcome]:
        def work(batch: list[Item]) -> list[Any]:
            out = []
            for item in batch:
                texts = [item.inputs["source_sentence"], *item.inputs["sentences"]]
                hidden, mask = self._hidden(texts, bool(item.params.get("truncate")))
                vectors = self._pool(hidden, mask, True)
                out.append((vectors[1:] @ vectors[0]).float().tolist())
            return out

        return self._each(items, work)

    def _text_classification(self, items: list[Item]) -> list[Outcome]:
        def work(batch: list[Item]) -> list[Any]:
            texts, spans = _flatten(batch)
            params = batch[0].params
            encoded = self._encode(texts, bool(params.get("truncate")))
            with torch.inference_mode():
                logits = self.model(**encoded).logits.float()
            scores = _apply(logits, params.get("function_to_apply"), self.model.config)
            labels = self.model.config.id2label
            top_k = params.get("top_k") or len(labels)
            rows = []
            for row in scores.tolist():
                ranked = sorted(enumerate(row), key=lambda pair: -pair[1])[:top_k]
                rows.append([{"label": labels[i], "score": s} for i, s in ranked])
            # A single string answers [[...]]: the client takes element 0 of the list.
            return [rows[start:end] for (start, end), _ in zip(spans, batch, strict=True)]

        return self._each(items, work)

    def _question_answering(self, items: list[Item]) -> list[Outcome]:
        def work(batch: list[Item]) -> list[Any]:
            questions = [item.inputs["question"] for item in batch]
            contexts = [item.inputs["context"] for item in batch]
            encoded = self._encode(questions, False, pair=contexts)
            offsets = self.tokenizer(questions, contexts, return_offsets_mapping=True, padding=True)
            with torch.inference_mode():
                out = self.model(**encoded)
            return [
                _best_span(out.start_logits[i], out.end_logits[i], offsets, i, contexts[i])
                for i in range(len(batch))
            ]

        return self._each(items, work)

    def _token_classification(self, items: list[Item]) -> list[Outcome]:
        params = items[0].params
        options = {"aggregation_strategy": params.get("aggregation_strategy") or "simple"}
        if params.get("ignore_labels"):
            options["ignore_labels"] = params["ignore_labels"]
        return self._pipeline_run("token-classification", items, options)

    def _fill_mask(self, items: list[Item]) -> list[Outcome]:
        mask = self.tokenizer.mask_token
        for item in items:
            texts = item.inputs if isinstance(item.inputs, list) else [item.inputs]
            if mask is None or any(mask not in text for text in texts):
                return self._each(items, lambda b: self._require_mask(b, mask))
        params = items[0].params
        options = {k: params[k] for k in ("top_k", "targets") if params.get(k) is not None}
        return self._pipeline_run("fill-mask", items, options)

    def _require_mask(self, batch: list[Item], mask: str | None) -> list[Any]:
        for item in batch:
            texts = item.inputs if isinstance(item.inputs, list) else [item.inputs]
            if mask is None or any(mask not in text for text in texts):
                raise InputError(f"Each input must contain the mask token {mask!r}")
        return self._pipeline_run("fill-mask", batch, {})

    def _zero_shot_classification(self, items: list[Item]) -> list[Outcome]:
        params = items[0].params
        options = {
            "candidate_labels": params["candidate_labels"],
            "multi_label": bool(params.get("multi_label")),
        }
        if params.get("hypothesis_template"):
            options["hypothesis_template"] = params["hypothesis_template"]

        def work(batch: list[Item]) -> list[Any]:
            texts, spans = _flatten(batch)
            results = self._pipe("zero-shot-classification")(texts, **options)
            results = results if isinstance(results, list) else [results]
            rows = [_labelled(r["labels"], r["scores"]) for r in results]
            return [
                rows[s] if not isinstance(item.inputs, list) else rows[s:e]
                for (s, e), item in zip(spans, batch, strict=True)
            ]

        return self._each(items, work)

    def _pipe(self, task: str) -> Any:
        if task not in self._pipelines:
            build: Any = pipeline  # typed per literal task name; ours is a variable
            if task == "image-classification":
                parts = {"image_processor": self.tokenizer}
            elif task == "zero-shot-image-classification":
                parts = {
                    "image_processor": self.tokenizer.image_processor,
                    "tokenizer": self.tokenizer.tokenizer,
                }
            else:
                parts = {"tokenizer": self.tokenizer}
            self._pipelines[task] = build(task, model=self.model, device=self.device, **parts)
        return self._pipelines[task]

    def _image_classification(self, items: list[Item]) -> list[Outcome]:
        top_k = items[0].params.get("top_k") or len(self.model.config.id2label)

        def work(batch: list[Item]) -> list[Any]:
            images = [_image(item.inputs) for item in batch]
            results = self._pipe("image-classification")(images, top_k=top_k)
            return [_plain(r) for r in results]

        return self._each(items, work)

    def _zero_shot_image_classification(self, items: list[Item]) -> list[Outcome]:
        labels = items[0].params["candidate_labels"]
        options = {"candidate_labels": labels}
        if items[0].params.get("hypothesis_template"):
            options["hypothesis_template"] = items[0].params["hypothesis_template"]

        def work(batch: list[Item]) -> list[Any]:
            images = [_image(item.inputs) for item in batch]
            results = self._pipe("zero-shot-image-classification")(images, **options)
            return [_plain(r) for r in results]

        return self._each(items, work)

    def _pipeline_run(self, task: str, items: list[Item], options: dict[str, Any]) -> list[Outcome]:
        def work(batch: list[Item]) -> list[Any]:
            texts, spans = _flatten(batch)
            for text in texts:  # the same token limit as every other task
                self._encode([text], False)
            results = self._pipe(task)(texts, batch_size=len(texts), **options)
            if len(texts) == 1 and (not results or isinstance(results[0], dict)):
                results = [results]
            rows = [_plain(r) for r in results]
            return [
                rows[s] if not isinstance(item.inputs, list) else rows[s:e]
                for (s, e), item in zip(spans, batch, strict=True)
            ]

        return self._each(items, work)

    def _text_generation(self, items: list[Item]) -> list[Outcome]:
        out = []
        for item in items:
            try:
                out.append(Outcome(self._generate("text-generation", item, None)))
            except InputError as exc:
                out.append(Outcome(status=400, message=exc.message))
        return out

    def _seq2seq(self, task: str, items: list[Item]) -> list[Outcome]:
        key = SEQ2SEQ_KEYS[task]

        def work(batch: list[Item]) -> list[Any]:
            return [[{key: self._generate(task, item, None)["text"]}] for item in batch]

        return self._each(items, work)

    def _chat(self, items: list[Item]) -> list[Outcome]:
        return [self.stream("chat", item, lambda _id, _piece: None) for item in items]

    def _generate(self, task: str, item: Item, on_token: OnToken | None) -> dict[str, Any]:
        """One generation; returns text, token ids, counts, finish reason (worker-internal)."""
        params = item.params
        prompt = self._prompt(task, item)
        encoded = self._encode([prompt], bool(params.get("truncate")))
        wanted = params.get("max_new_tokens") or params.get("max_tokens") or 20
        # Only ids and mask: a BERT-style tokenizer's token_type_ids make generate() refuse.
        prompt_inputs = {k: encoded[k] for k in ("input_ids", "attention_mask") if k in encoded}
        allowed = self._room(int(prompt_inputs["input_ids"].shape[-1]))
        result = generate(
            self.model,
            self.tokenizer,
            prompt_inputs,
            max_new_tokens=min(int(wanted), self.max_new_tokens, allowed),
            params=params,
            on_token=on_token,
        )
        text = result.text
        if task == "text-generation" and params.get("return_full_text"):
            text = prompt + text
        return {
            "text": text,
            "tokens": result.token_ids,
            "prompt_tokens": result.prompt_tokens,
            "finish_reason": result.finish_reason,
            "seed": result.seed,
        }

    def _room(self, prompt_tokens: int) -> int:
        """New tokens that fit after the prompt in a decoder's context (a seq2seq model's
        output has a window of its own); a prompt that alone fills the window is refused."""
        if self.context is None or self.model.config.is_encoder_decoder:
            return self.max_new_tokens
        room = self.context - prompt_tokens
        if room <= 0:
            raise InputError(
                f"The prompt is {prompt_tokens} tokens; this model's context holds "
                f"{self.context}, so there is no room to generate: send a shorter prompt"
            )
        return room

    def _prompt(self, task: str, item: Item) -> str:
        if task != "chat":
            return str(item.inputs)
        if not getattr(self.tokenizer, "chat_template", None):
            raise InputError("This model has no chat template; use text generation instead")
        prompt = self.tokenizer.apply_chat_template(
            item.inputs, tokenize=False, add_generation_prompt=True
        )
        return str(prompt)


def _image(data: bytes) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(io.BytesIO(data)).convert("RGB")
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError("The body is not an image this server can read") from exc


def _flatten(batch: list[Item]) -> tuple[list[str], list[tuple[int, int]]]:
    """All strings of a batch in one list, and each item's (start, end) in it."""
    texts: list[str] = []
    spans = []
    for item in batch:
        values = item.inputs if isinstance(item.inputs, list) else [item.inputs]
        spans.append((len(texts), len(texts) + len(values)))
        texts.extend(str(v) for v in values)
    return texts, spans


def _unflatten(batch: list[Item], spans: list[tuple[int, int]], rows: list[Any]) -> list[Any]:
    return [
        rows[s:e] if isinstance(item.inputs, list) else rows[s]
        for (s, e), item in zip(spans, batch, strict=True)
    ]


def _apply(logits: torch.Tensor, function: str | None, config: Any) -> torch.Tensor:
    if function is None:
        multi = config.problem_type == "multi_label_classification" or config.num_labels == 1
        function = "sigmoid" if multi else "softmax"
    if function == "sigmoid":
        return logits.sigmoid()
    if function == "softmax":
        return logits.softmax(-1)
    return logits


def _best_span(
    start: torch.Tensor, end: torch.Tensor, encoding: Any, row: int, context: str
) -> dict[str, Any]:
    """The most likely answer inside the context: max start+end logit with start <= end."""
    sequence_ids = encoding.sequence_ids(row)
    offsets = encoding["offset_mapping"][row]
    allowed = torch.tensor([sid == 1 for sid in sequence_ids[: start.shape[0]]])
    start = start.float().masked_fill(~allowed, -1e9).softmax(-1)
    end = end.float().masked_fill(~allowed, -1e9).softmax(-1)
    scores = torch.triu(start[:, None] * end[None, :])
    flat = int(scores.argmax())
    first, last = divmod(flat, scores.shape[1])
    char_start, char_end = offsets[first][0], offsets[last][1]
    return {
        "answer": context[char_start:char_end],
        "score": float(scores[first, last]),
        "start": int(char_start),
        "end": int(char_end),
    }


def _labelled(labels: list[str], scores: list[float]) -> list[dict[str, Any]]:
    return [{"label": lab, "score": float(s)} for lab, s in zip(labels, scores, strict=True)]


def _plain(value: Any) -> Any:
    """numpy scalars and tensors from pipelines as JSON-ready Python values."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "item"):
        return value.item()
    return value
