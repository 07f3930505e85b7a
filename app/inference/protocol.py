"""What the API process and a worker say to each other over a `multiprocessing` connection.

Messages are pickled tuples whose first item names them:

    API -> worker                              worker -> API
    ("load", LoadSpec)                         ("loaded", key, bytes, seconds)
    ("unload", key)                            ("load_failed", key, status, message)
    ("run", job_id, key, task, [Item])         ("done", job_id, [Outcome])
    ("stream", job_id, key, task, Item)        ("chunk", job_id, piece)  ... then ("done", ...)
    ("ping",)                                  ("hello", device, pid)

A `run` is one batch: the items of several requests with the same task and parameters; the
worker answers one Outcome per item, so one bad input fails only its own request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.repos.content import Content


@dataclass(frozen=True)
class FileRef:
    """One repo file and where its bytes are (`app.repos.content`: a git blob, an LFS object
    or a Xet file), which a worker opens with the blob store alone."""

    path: str
    content: Content

    @property
    def size(self) -> int:
        return self.content.size


@dataclass(frozen=True)
class LoadSpec:
    """Everything a worker needs to load a model without a database."""

    key: str  # repo_id@sha: a new commit is a new model
    repo_id: str
    task: str  # the task the model was detected for (picks the AutoModel class)
    files: tuple[FileRef, ...]
    memory: int  # estimated bytes once loaded (safetensors headers x dtype)
    base: LoadSpec | None = None  # the base model of a PEFT adapter


@dataclass(frozen=True)
class Item:
    """The inputs and parameters of one request."""

    inputs: Any
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """One request's result, or its error as an HTTP status and message."""

    value: Any = None
    status: int = 200
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200
