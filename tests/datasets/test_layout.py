"""Configs and splits resolved from file names and README YAML, as the Hub resolves them."""

from __future__ import annotations

from typing import Any

import pytest

from app.datasets.layout import glob_regex, resolve_layout
from app.errors import BadRequest


def splits_of(paths: list[str], card: dict[str, Any] | None = None) -> dict[str, Any]:
    layout = resolve_layout(paths, card or {})
    return {c.name: (c.format, {s.name: list(s.files) for s in c.splits}) for c in layout.configs}


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (
            [
                "README.md",
                "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet",
                "data/test-00000-of-00001.parquet",
            ],
            {
                "default": (
                    "parquet",
                    {
                        "train": [
                            "data/train-00000-of-00002.parquet",
                            "data/train-00001-of-00002.parquet",
                        ],
                        "test": ["data/test-00000-of-00001.parquet"],
                    },
                )
            },
        ),
        (
            ["train.csv", "test.csv", "valid.csv", ".gitattributes"],
            {
                "default": (
                    "csv",
                    {"train": ["train.csv"], "validation": ["valid.csv"], "test": ["test.csv"]},
                )
            },
        ),
        (
            ["data/my_train-1.jsonl", "data/dev.jsonl", "notes.md"],
            {
                "default": (
                    "json",
                    {"train": ["data/my_train-1.jsonl"], "validation": ["data/dev.jsonl"]},
                )
            },
        ),
        (
            ["train/cat/1.png", "train/dog/2.jpg", "test/cat/3.png"],
            {
                "default": (
                    "imagefolder",
                    {"train": ["train/cat/1.png", "train/dog/2.jpg"], "test": ["test/cat/3.png"]},
                )
            },
        ),
        (
            ["poems.txt", "more/lines.txt", "__pycache__/x.txt", ".hidden/y.txt"],
            {"default": ("text", {"train": ["more/lines.txt", "poems.txt"]})},
        ),
        (["README.md", "model.bin"], {}),
        # The most common format wins; the others are left out of the config.
        (["a.csv", "b.csv", "c.parquet"], {"default": ("csv", {"train": ["a.csv", "b.csv"]})}),
        # "contest" is not the split keyword "test".
        (["contest.csv"], {"default": ("csv", {"train": ["contest.csv"]})}),
    ],
)
def test_splits_are_inferred_from_file_and_folder_names(
    paths: list[str], expected: dict[str, Any]
) -> None:
    assert splits_of(paths) == expected


def test_image_folder_keeps_its_metadata_file_beside_the_images() -> None:
    layout = resolve_layout(["train/metadata.csv", "train/a.png", "train/b.png"], {})
    split = layout.configs[0].splits[0]
    assert (layout.configs[0].format, split.files, split.metadata) == (
        "imagefolder",
        ("train/a.png", "train/b.png"),
        ("train/metadata.csv",),
    )


def test_readme_configs_with_split_lists_globs_and_data_dir() -> None:
    card = {
        "configs": [
            {
                "config_name": "en",
                "data_files": [
                    {"split": "train", "path": "en/train-*.csv"},
                    {"split": "test", "path": ["en/test.csv"]},
                ],
            },
            {"config_name": "fr", "data_dir": "fr", "default": True},
            {"config_name": "all", "data_files": "**/*.csv"},
        ]
    }
    paths = ["en/train-1.csv", "en/train-2.csv", "en/test.csv", "fr/train.csv", "fr/test.csv"]
    assert splits_of(paths, card) == {
        "fr": ("csv", {"train": ["fr/train.csv"], "test": ["fr/test.csv"]}),
        "en": ("csv", {"train": ["en/train-1.csv", "en/train-2.csv"], "test": ["en/test.csv"]}),
        "all": ("csv", {"train": sorted(paths)}),
    }
    # The `default: true` config is listed first: it is what a viewer shows without ?config=.
    assert resolve_layout(paths, card).configs[0].name == "fr"


@pytest.mark.parametrize(
    "configs", ["not a list", [{"config_name": "x", "data_files": [1, 2]}], ["just a string"]]
)
def test_malformed_readme_configs_are_a_clear_400(configs: Any) -> None:
    with pytest.raises(BadRequest, match=r"configs|data_files"):
        resolve_layout(["a.csv"], {"configs": configs})


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.csv", "a.csv", True),
        ("*.csv", "dir/a.csv", False),
        ("**/*.csv", "dir/sub/a.csv", True),
        ("**/*.csv", "a.csv", True),
        ("data/train-*", "data/train-0.parquet", True),
        ("train[-._ 0-9]*", "train_1.csv", True),
        ("train[-._ 0-9]*", "trainer.csv", False),
    ],
)
def test_globs_follow_fsspec_semantics(pattern: str, path: str, matches: bool) -> None:
    assert bool(glob_regex(pattern).match(path)) is matches
