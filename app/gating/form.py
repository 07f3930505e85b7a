"""The gate form a repo's card declares, and the answers a user gives to it.

As on the Hub, the card's YAML describes the form:

    extra_gated_heading: Acknowledge the license to access this model
    extra_gated_prompt: By requesting access you agree to the terms below.
    extra_gated_description: Requests are reviewed within two days.
    extra_gated_button_content: Request access
    extra_gated_fields:
      Company: text
      Country: country
      Start date: date_picker
      Intended use:
        type: select
        options: [Research, Education, {label: Other, value: other}]
      I agree to use this model for non-commercial use ONLY: checkbox

Every field is required (a checkbox must be ticked). Answers are checked against the form as
it is when they arrive: a value outside a select's options, an unknown country, a malformed
date, or an answer longer than `MAX_ANSWER` is refused with the field's name in the message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import pycountry

from app.errors import BadRequest

KINDS = ("text", "checkbox", "country", "date_picker", "select")
MAX_FIELDS = 50
MAX_ANSWER = 1000
MAX_LABEL = 200
CHECKED = ("on", "true", "1", "yes")


@dataclass(frozen=True)
class Option:
    label: str
    value: str


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    options: tuple[Option, ...] = ()

    @property
    def key(self) -> str:
        """The form control's name in the page (field names may hold any character)."""
        return "field-" + hashlib.sha256(self.name.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class GateForm:
    heading: str
    prompt: str | None
    description: str | None
    button: str
    fields: tuple[Field, ...]


def gate_form(card_data: Mapping[str, Any] | None, repo_type: str) -> GateForm:
    """The form of a repo's card; a card without one asks for no answers."""
    data = card_data or {}
    heading = _text(data.get("extra_gated_heading")) or (
        f"You need to agree to share your contact information to access this {repo_type}"
    )
    return GateForm(
        heading=heading,
        prompt=_text(data.get("extra_gated_prompt"), limit=20_000),
        description=_text(data.get("extra_gated_description"), limit=2_000),
        button=_text(data.get("extra_gated_button_content")) or "Agree and request access",
        fields=_fields(data.get("extra_gated_fields")),
    )


def _text(value: Any, limit: int = MAX_LABEL) -> str | None:
    if isinstance(value, str | int | float) and str(value).strip():
        return str(value).strip()[:limit]
    return None


def _fields(value: Any) -> tuple[Field, ...]:
    if not isinstance(value, Mapping):
        return ()
    fields = []
    for name, spec in list(value.items())[:MAX_FIELDS]:
        label = _text(name)
        if label is None:
            continue
        if isinstance(spec, Mapping):
            kind = spec.get("type")
            options = _options(spec.get("options"))
        else:
            kind, options = spec, ()
        if kind not in KINDS or (kind == "select" and not options):
            kind = "text"  # an unknown type still asks the question
        fields.append(Field(label, str(kind), options))
    return tuple(fields)


def _options(value: Any) -> tuple[Option, ...]:
    if not isinstance(value, list):
        return ()
    options = []
    for item in value[:MAX_FIELDS]:
        if isinstance(item, Mapping):
            label, raw = _text(item.get("label")), _text(item.get("value"))
            if label or raw:
                options.append(Option(label or raw or "", raw or label or ""))
        elif (text := _text(item)) is not None:
            options.append(Option(text, text))
    return tuple(options)


@cache
def countries() -> tuple[str, ...]:
    return tuple(sorted(country.name for country in pycountry.countries))


def check_answers(form: GateForm, answers: Mapping[str, Any]) -> dict[str, Any]:
    """The answers (by field name) a request records; BadRequest naming the first bad field.
    `answers` may be keyed by field name (the API) or by the page's control names."""
    checked: dict[str, Any] = {}
    for field in form.fields:
        raw = answers.get(field.name, answers.get(field.key))
        checked[field.name] = _answer(field, raw)
    return checked


def _answer(field: Field, raw: Any) -> Any:
    if field.kind == "checkbox":
        if raw is True or (isinstance(raw, str) and raw.lower() in CHECKED):
            return True
        raise BadRequest(f"{field.name!r} must be checked to request access")
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise BadRequest(f"{field.name!r} is required")
    text = str(raw).strip()
    if not text:
        raise BadRequest(f"{field.name!r} is required")
    if len(text) > MAX_ANSWER:
        raise BadRequest(f"{field.name!r} is longer than {MAX_ANSWER} characters")
    if field.kind == "country" and text not in countries():
        raise BadRequest(f"{field.name!r}: {text[:80]!r} is not a country name")
    if field.kind == "date_picker":
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            raise BadRequest(f"{field.name!r} must be a date (YYYY-MM-DD)") from None
    if field.kind == "select":
        values = {option.value for option in field.options}
        if text not in values:
            raise BadRequest(f"{field.name!r} must be one of: {', '.join(sorted(values))}")
    return text
