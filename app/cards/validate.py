"""What `POST /api/validate-yaml` checks in a card's metadata, as the Hub does: the types of
the fields the Hub reads (a license is a string, tags a list of strings, …) and the
structure of `model-index` (the evaluation results). Errors name the field the way the Hub
does (`"model-index[0].results" is required`); a card without metadata only warns.

Fields the Hub does not define are free: a card may carry anything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EMPTY_WARNING = "Empty or missing yaml metadata in repo card"
MAX_ERRORS = 20  # a broken model-index of 1,000 results is told in a few lines

Check = Callable[[Any, str, list[str]], None]


def _string(value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, str):
        errors.append(f'"{where}" must be a string')


def _boolean(value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, bool):
        errors.append(f'"{where}" must be a boolean')


def _strings(value: Any, where: str, errors: list[str]) -> None:
    """A string or a list of strings."""
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        errors.append(f'"{where}" must be a string or an array of strings')
        return
    for index, item in enumerate(value):
        if not isinstance(item, str):
            errors.append(f'"{where}[{index}]" must be a string')


def _one_of(*choices: str) -> Check:
    def check(value: Any, where: str, errors: list[str]) -> None:
        if value not in choices:
            errors.append(f'"{where}" must be one of [{", ".join(choices)}]')

    return check


def _array_of_objects(value: Any, where: str, errors: list[str]) -> None:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        errors.append(f'"{where}" must be an array of objects')


def _object(fields: dict[str, tuple[Check, bool]]) -> Check:
    """An object whose named fields (check, required) are checked; others are free."""

    def check(value: Any, where: str, errors: list[str]) -> None:
        if not isinstance(value, dict):
            errors.append(f'"{where}" must be an object')
            return
        for name, (inner, required) in fields.items():
            if name not in value or value[name] is None:
                if required:
                    errors.append(f'"{where}.{name}" is required')
                continue
            inner(value[name], f"{where}.{name}", errors)

    return check


def _array(item: Check, *, required_items: bool = False) -> Check:
    def check(value: Any, where: str, errors: list[str]) -> None:
        if not isinstance(value, list):
            errors.append(f'"{where}" must be an array')
            return
        if required_items and not value:
            errors.append(f'"{where}" must contain at least 1 item')
        for index, element in enumerate(value):
            if len(errors) >= MAX_ERRORS:
                return
            item(element, f"{where}[{index}]", errors)

    return check


def _anything(value: Any, where: str, errors: list[str]) -> None:
    return None


_METRIC = _object(
    {
        "type": (_string, True),
        "value": (_anything, True),
        "name": (_string, False),
        "config": (_string, False),
        "verified": (_boolean, False),
    }
)
_RESULT = _object(
    {
        "task": (_object({"type": (_string, True), "name": (_string, False)}), True),
        "dataset": (
            _object(
                {
                    "type": (_string, True),
                    "name": (_string, True),
                    "config": (_string, False),
                    "split": (_string, False),
                    "revision": (_string, False),
                }
            ),
            True,
        ),
        "metrics": (_array(_METRIC, required_items=True), True),
        "source": (_object({"name": (_string, False), "url": (_string, True)}), False),
    }
)
_MODEL_INDEX = _array(
    _object({"name": (_string, True), "results": (_array(_RESULT), True)}), required_items=True
)

COMMON: dict[str, Check] = {
    "license": _strings,  # datasets often list several
    "license_name": _string,
    "license_link": _string,
    "language": _strings,
    "tags": _strings,
    "thumbnail": _string,
    "pretty_name": _string,
}
BY_TYPE: dict[str, dict[str, Check]] = {
    "model": {
        "model-index": _MODEL_INDEX,
        "pipeline_tag": _string,
        "library_name": _string,
        "datasets": _strings,
        "metrics": _strings,
        "base_model": _strings,
        "widget": _array_of_objects,
    },
    "dataset": {
        "task_categories": _strings,
        "task_ids": _strings,
        "size_categories": _strings,
        "multilinguality": _strings,
        "source_datasets": _strings,
        "annotations_creators": _strings,
        "language_creators": _strings,
        "configs": _array(_object({"config_name": (_string, True)})),
    },
    "space": {
        "title": _string,
        "emoji": _string,
        "sdk": _one_of("gradio", "docker", "static", "streamlit"),
        "sdk_version": _string,
        "app_file": _string,
        "app_port": _anything,
        "pinned": _boolean,
        "models": _strings,
        "datasets": _strings,
    },
}


def validate_metadata(data: dict[str, Any], repo_type: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) of parsed card metadata for a repo of repo_type."""
    if not data:
        return [], [EMPTY_WARNING]
    checks = {**COMMON, **BY_TYPE.get(repo_type, BY_TYPE["model"])}
    errors: list[str] = []
    for name, check in checks.items():
        value = data.get(name)
        if value is not None:
            check(value, name, errors)
        if len(errors) >= MAX_ERRORS:
            break
    return errors[:MAX_ERRORS], []
