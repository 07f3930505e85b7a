"""Text generation on a loaded causal or seq2seq model, token by token when streamed.

`generate` is shared by text-generation, text2text-generation, chat completion and the OpenAI
completions: one place that clamps lengths, applies stop sequences and seeds, and reports the
finish reason (`length`, `stop` or `eos_length`-free `stop`) the clients expect.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

OnToken = Callable[[int, str], None]  # (token id, text it added) as each token is made


@dataclass
class Generated:
    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str  # length | stop (eos or a stop sequence)
    seed: int | None = None


@dataclass
class _Tracker(BaseStreamer):
    """Sees every new token, keeps the decoded text, and reports the text each one added.

    Text is re-decoded from all new ids and diffed, because one character may span several
    tokens (byte-level BPE); a trailing U+FFFD means "wait for the rest of the character".
    """

    tokenizer: Any
    skip_first: bool
    on_token: OnToken | None
    ids: list[int] = field(default_factory=list)
    text: str = ""

    def put(self, value: torch.Tensor) -> None:
        if self.skip_first:  # decoder-only models hand the prompt over first
            self.skip_first = False
            return
        for token in value.reshape(-1).tolist():
            self.ids.append(int(token))
            full = self.tokenizer.decode(self.ids, skip_special_tokens=True)
            if full.endswith("\ufffd"):
                piece = ""
            else:
                piece, self.text = full[len(self.text) :], full
            if self.on_token is not None:
                self.on_token(int(token), piece)

    def end(self) -> None:
        pass


class _StopOn(StoppingCriteria):
    def __init__(self, tracker: _Tracker, stops: list[str]):
        self.tracker = tracker
        self.stops = stops

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> bool:
        return any(stop in self.tracker.text for stop in self.stops)


def generate(
    model: Any,
    tokenizer: Any,
    encoded: dict[str, torch.Tensor],
    *,
    max_new_tokens: int,
    params: dict[str, Any],
    on_token: OnToken | None = None,
) -> Generated:
    """Run generate on one encoded prompt; params follow TGI/OpenAI names (temperature, top_p,
    top_k, do_sample, repetition_penalty, seed, stop)."""
    stops = [s for s in params.get("stop") or [] if s]
    tracker = _Tracker(tokenizer, not model.config.is_encoder_decoder, on_token)
    seed = params.get("seed")
    if seed is not None:
        torch.manual_seed(int(seed))
    options = sampling_options(params)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.inference_mode():
        model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            streamer=tracker,
            stopping_criteria=StoppingCriteriaList([_StopOn(tracker, stops)]) if stops else None,
            pad_token_id=pad,
            **options,
        )
    text, finish = tracker.text, "length"
    eos = tokenizer.eos_token_id
    if tracker.ids and eos is not None and tracker.ids[-1] == eos:
        finish = "stop"
    for stop in stops:
        if stop in text:
            text, finish = text[: text.index(stop)], "stop"
    if len(tracker.ids) < max_new_tokens and finish == "length":
        finish = "stop"
    prompt_tokens = int(encoded["input_ids"].shape[-1])
    return Generated(text, tracker.ids, prompt_tokens, finish, seed)


def sampling_options(params: dict[str, Any]) -> dict[str, Any]:
    temperature = params.get("temperature")
    do_sample = params.get("do_sample")
    if do_sample is None:
        do_sample = bool(temperature) or params.get("top_p") is not None
    if not do_sample:
        return {"do_sample": False}
    options: dict[str, Any] = {"do_sample": True}
    if temperature:
        options["temperature"] = float(temperature)
    for name in ("top_p", "top_k", "repetition_penalty"):
        if params.get(name) is not None:
            options[name] = params[name]
    return options
