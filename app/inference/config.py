"""Inference settings (`ATRIUM_INFERENCE_*`), kept beside the pool that reads them.

They live in their own pydantic-settings class so the API settings stay small; `atrium config`
lists them after the core settings.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from app.config import AtriumSettings, Size

GiB = 1024**3


class InferenceSettings(AtriumSettings):
    model_config = SettingsConfigDict(env_prefix="ATRIUM_INFERENCE_", extra="ignore")

    enabled: bool = Field(default=True, description="serve /models and /v1 inference routes")
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N")
    workers: int = Field(default=1, ge=1, description="CPU worker processes when there is no GPU")
    worker_threads: int = Field(default=0, ge=0, description="torch threads per worker; 0 = auto")
    remote_workers: str = Field(
        default="", description="host:port of `atrium worker` processes, comma-separated"
    )
    memory_budget: Size = Field(
        default=8 * GiB, ge=1, description="bytes of model weights one device may hold"
    )
    max_batch_size: int = Field(default=32, ge=1, description="requests run as one batch")
    max_wait_ms: float = Field(default=5.0, ge=0, description="how long a batch waits to fill")
    queue_size: int = Field(default=256, ge=1, description="waiting requests per model (429)")
    request_timeout_s: float = Field(default=120.0, gt=0, description="per request, once queued")
    load_wait_s: float = Field(
        default=120.0, ge=0, description="how long a request waits for its model to load"
    )
    max_input_tokens: int = Field(default=512, ge=1, description="longest accepted input")
    max_new_tokens: int = Field(default=256, ge=1, description="generation cap per request")
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = Field(
        default="auto", description="auto | float32 | float16 | bfloat16"
    )
    quantize: Literal["", "8bit", "4bit"] = Field(
        default="", description="8bit | 4bit with bitsandbytes on CUDA; empty loads full weights"
    )
    allow_pickle: str = Field(
        default="", description="repo ids allowed to load pickle weights, comma-separated"
    )
    backend: Literal["local", "ray"] = Field(
        default="local", description="local worker processes | ray"
    )
    ray_address: str = Field(
        default="",
        validation_alias="ATRIUM_RAY_ADDRESS",
        description="Ray cluster address (ray://host:10001, auto) or `local` to start one",
    )
    ray_max_replicas: int = Field(default=4, ge=1, description="Serve autoscaling ceiling")
    ray_models_per_replica: int = Field(default=4, ge=1, description="multiplexed models kept")

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError("not a device Atrium runs models on; use auto, cpu, cuda or cuda:N")
        return value

    def describe(self) -> dict[str, str]:
        rows = {}
        for name, info in type(self).model_fields.items():
            variable = info.validation_alias or f"ATRIUM_INFERENCE_{name.upper()}"
            rows[str(variable)] = str(getattr(self, name))
        return rows

    @property
    def remote_addresses(self) -> list[tuple[str, int]]:
        out = []
        for item in filter(None, (part.strip() for part in self.remote_workers.split(","))):
            host, _, port = item.rpartition(":")
            out.append((host or "127.0.0.1", int(port)))
        return out

    @property
    def pickle_repos(self) -> set[str]:
        return {part.strip() for part in self.allow_pickle.split(",") if part.strip()}
