"""The git-lfs batch API's request (https://github.com/git-lfs/git-lfs/blob/main/docs/api/batch.md),
as git-lfs and huggingface_hub send it (hf-protocol.md §7.2)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

LFS_JSON = "application/vnd.git-lfs+json"
MAX_BATCH_OBJECTS = 1000  # huggingface_hub sends 256, git-lfs 100


class ObjectSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")

    oid: str
    size: int


class RefSpec(BaseModel):
    name: str


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    operation: Literal["upload", "download"]
    transfers: list[str] = Field(default_factory=lambda: ["basic"])
    objects: list[ObjectSpec] = Field(max_length=MAX_BATCH_OBJECTS)
    ref: RefSpec | None = None
    hash_algo: str = "sha256"


class PartSpec(BaseModel):
    partNumber: int
    etag: str


class CompletionRequest(BaseModel):
    """huggingface_hub's multipart completion body (lfs.py `_get_completion_payload`)."""

    oid: str
    parts: list[PartSpec]


class VerifyRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    oid: str
    size: int


def object_error(oid: str, size: int, code: int, message: str) -> dict[str, Any]:
    return {"oid": oid, "size": size, "error": {"code": code, "message": message}}
