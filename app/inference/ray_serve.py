"""Scale-out on Ray Serve (ATRIUM_INFERENCE_BACKEND=ray, ATRIUM_RAY_ADDRESS).

Instead of local worker processes, the pool talks to one Ray Serve deployment whose replicas
each run the same `Engine` as a local worker. Ray does the rest of the cluster work:

- model multiplexing (`serve.multiplexed`): a request carries its model key as the
  multiplexed model id, Serve routes it to a replica that has the model loaded when there is
  one, and each replica keeps at most ATRIUM_INFERENCE_RAY_MODELS_PER_REPLICA models, evicting
  the least recently used;
- autoscaling replicas (up to ATRIUM_INFERENCE_RAY_MAX_REPLICAS) across the cluster's nodes,
  each replica asking for one GPU when the cluster has them.

The API process still validates, queues and batches (app/inference/pool.py); a batch is one
Serve call. Token streaming is not carried through Serve: a streamed request gets its text in
one piece at the end.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import Any

from app.config import Settings
from app.inference.config import InferenceSettings
from app.inference.errors import UnsupportedModel, WorkerUnavailable
from app.inference.links import Resident
from app.inference.protocol import Item, LoadSpec, Outcome

APP_NAME = "atrium-inference"
UNLIMITED = 2**62  # Ray places and evicts models itself; the pool's budget does not apply


def build_deployment(core: Settings, settings: InferenceSettings) -> Any:
    """The Serve application: one deployment class, bound to the hub's settings."""
    import ray
    from ray import serve

    gpus = 1 if ray.cluster_resources().get("GPU", 0) else 0

    @serve.deployment(
        name="models",
        ray_actor_options={"num_gpus": gpus, "num_cpus": 1},
        autoscaling_config={"min_replicas": 1, "max_replicas": settings.ray_max_replicas},
        max_ongoing_requests=settings.max_batch_size * 4,
    )
    class Models:
        def __init__(self) -> None:
            from app.inference.worker import Engine

            device = "cuda" if gpus else "cpu"
            self.engine = Engine(core, settings, device, threads=False)
            self.specs: dict[str, LoadSpec] = {}

        @serve.multiplexed(max_num_models_per_replica=settings.ray_models_per_replica)
        async def model(self, key: str) -> Any:
            return await asyncio.to_thread(self.engine.build, self.specs[key])

        async def load(self, spec: LoadSpec) -> int:
            self.specs[spec.key] = spec
            await self.model(serve.get_multiplexed_model_id())
            return spec.memory

        async def run(self, spec: LoadSpec, task: str, items: list[Item]) -> list[Outcome]:
            self.specs[spec.key] = spec
            runner = await self.model(serve.get_multiplexed_model_id())
            if task in ("chat", "text-generation") and len(items) == 1:
                outcome = await asyncio.to_thread(runner.stream, task, items[0], _ignore)
                return [outcome]
            result: list[Outcome] = await asyncio.to_thread(runner.run, task, items)
            return result

    deployment: Any = Models  # a serve.Deployment once decorated
    return deployment.bind()


def _ignore(token: int, piece: str) -> None:
    return None


class RayLink:
    """The pool's view of the Serve deployment, shaped like a local `WorkerLink`."""

    def __init__(self, core: Settings, settings: InferenceSettings, loop: Any):
        self.core, self.settings, self.loop = core, settings, loop
        self.name, self.device = "ray", "ray"
        self.budget = UNLIMITED
        self.models: OrderedDict[str, Resident] = OrderedDict()
        self.specs: dict[str, LoadSpec] = {}
        self.alive = self.started = False
        self.handle: Any = None
        self.pid: int | None = None

    @property
    def used(self) -> int:
        return 0

    def start(self) -> None:
        """Connect to the cluster (or start a local one for `local`) and deploy."""
        try:
            import ray
            from ray import serve
        except ImportError:
            raise UnsupportedModel(
                "ATRIUM_INFERENCE_BACKEND=ray needs `pip install ray[serve]`"
            ) from None
        address = self.settings.ray_address or "auto"
        ray.init(
            address=None if address == "local" else address,
            namespace="atrium",
            ignore_reinit_error=True,
            include_dashboard=False,
            log_to_driver=False,
        )
        self.handle = serve.run(
            build_deployment(self.core, self.settings), name=APP_NAME, route_prefix=None
        )
        self.started = self.alive = True

    def close(self) -> None:
        if self.started:
            from ray import serve

            serve.delete(APP_NAME)

    def touch(self, key: str) -> None:
        if key in self.models:
            self.models.move_to_end(key)

    def unload(self, key: str) -> None:
        self.models.pop(key, None)  # Serve evicts by itself; nothing to tell it

    def begin_load(self, spec: LoadSpec) -> Resident:
        resident = Resident(memory=0, ready=self.loop.create_future(), started=time.monotonic())
        resident.ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.models[spec.key] = resident
        self.specs[spec.key] = spec
        self.loop.create_task(self._load(spec, resident))
        return resident

    async def _load(self, spec: LoadSpec, resident: Resident) -> None:
        try:
            await self.handle.options(multiplexed_model_id=spec.key).load.remote(spec)
        except Exception as exc:
            self.models.pop(spec.key, None)
            resident.ready.set_exception(_describe(exc))
            return
        resident.ready.set_result(None)

    async def run(
        self, key: str, task: str, items: list[Item], on_chunk: Any = None
    ) -> list[Outcome]:
        spec = self.specs[key]
        try:
            call = self.handle.options(multiplexed_model_id=key).run.remote(spec, task, items)
            outcomes: list[Outcome] = await call
        except Exception as exc:
            raise _describe(exc) from None
        if on_chunk is not None and outcomes and outcomes[0].ok:
            on_chunk((0, outcomes[0].value["text"]))
        return outcomes


def _describe(exc: Exception) -> Exception:
    text = str(exc)
    if "UnsupportedModel" in text or "cannot be loaded" in text:
        return UnsupportedModel(text.splitlines()[-1][:500])
    return WorkerUnavailable(f"The Ray Serve deployment failed: {type(exc).__name__}")
