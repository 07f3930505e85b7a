"""The worker pool as the API process sees it: placement, eviction, queues and batching.

Each model has one queue and one consumer task. The consumer makes sure the model is loaded
somewhere (placing it on the worker with the most room and unloading the least recently used
idle models when the memory budget would be exceeded), then takes up to `max_batch_size`
waiting requests with the same task and parameters (waiting at most `max_wait_ms` for the batch
to fill) and sends them as one batch. While a batch runs, new requests queue up, so under load
batches fill by themselves. A full queue answers 429, a model still loading answers 503 with an
estimate when the caller would rather not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.config import Settings
from app.inference.config import InferenceSettings
from app.inference.errors import (
    InferenceTimeout,
    ModelLoading,
    QueueFull,
    UnsupportedModel,
    WorkerUnavailable,
)
from app.inference.links import WorkerLink, raise_for
from app.inference.metrics import InferenceMetrics
from app.inference.protocol import Item, Outcome
from app.inference.service import ModelSpec

if TYPE_CHECKING:
    from app.inference.ray_serve import RayLink

    Link = WorkerLink | RayLink

LOAD_OVERHEAD_BYTES = 64 * 1024**2  # a load costs about this much beyond its weights (imports)
INITIAL_LOAD_RATE_S_PER_BYTE = 1.0 / (100 * 1024**2)  # 100 MB/s until a load is measured
PLACE_POLL_S = 0.02  # how often a load waiting for room looks again
INITIAL_BATCH_S = 0.05  # assumed time per batch until one is measured


@dataclass
class _Pending:
    task: str
    item: Item
    group: str  # task + parameters: requests batch together only when these match
    future: asyncio.Future[Any]
    queued: float = field(default_factory=time.monotonic)
    on_chunk: Any = None


@dataclass
class _ModelQueue:
    spec: ModelSpec
    waiting: deque[_Pending] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    consumer: asyncio.Task[None] | None = None
    batch_seconds: float = INITIAL_BATCH_S  # recent time per batch, for Retry-After


class LoadClock:
    """Seconds a load takes, learned from past loads, for honest `estimated_time` answers."""

    def __init__(self) -> None:
        self.rate = INITIAL_LOAD_RATE_S_PER_BYTE

    def estimate(self, memory: int) -> float:
        return (memory + LOAD_OVERHEAD_BYTES) * self.rate

    def observe(self, memory: int, seconds: float) -> None:
        measured = seconds / (memory + LOAD_OVERHEAD_BYTES)
        self.rate = 0.5 * self.rate + 0.5 * measured


class Pool:
    def __init__(self, core: Settings, settings: InferenceSettings):
        self.core = core
        self.settings = settings
        self.metrics = InferenceMetrics()
        self.links: list[Link] = []
        self.queues: dict[str, _ModelQueue] = {}
        self.clock = LoadClock()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Create the worker links; each worker starts with the first model it must load."""
        loop = asyncio.get_running_loop()
        remote = self.settings.remote_addresses
        if self.settings.backend == "ray":
            from app.inference.ray_serve import RayLink

            self.links.append(RayLink(self.core, self.settings, loop))
        elif remote:
            for index, address in enumerate(remote):
                self.links.append(self._link(f"remote{index}", "remote", loop, address))
        else:
            for index, device in enumerate(local_devices(self.settings)):
                self.links.append(self._link(f"w{index}", device, loop, None))

    def _link(
        self, name: str, device: str, loop: Any, address: tuple[str, int] | None
    ) -> WorkerLink:
        return WorkerLink(
            name, device, self.core, self.settings, loop, address=address, on_lost=self._lost
        )

    def _lost(self, link: WorkerLink) -> None:
        self.metrics.restarts.inc()
        self.metrics.device_memory.labels(link.name, link.device).set(0)

    async def close(self) -> None:
        for queue in self.queues.values():
            if queue.consumer is not None:
                queue.consumer.cancel()
        for link in self.links:
            await asyncio.to_thread(link.close)

    def status(self) -> list[dict[str, Any]]:
        return [
            {
                "name": link.name,
                "device": link.device,
                "pid": link.pid,
                "alive": link.alive,
                "budget": link.budget,
                "used": link.used,
                "models": [
                    {"key": key, "memory": r.memory, "ready": r.ready.done(), "busy": r.inflight}
                    for key, r in link.models.items()
                ],
            }
            for link in self.links
        ]

    # -- requests ---------------------------------------------------------------------------

    async def infer(self, spec: ModelSpec, task: str, item: Item, *, wait: bool) -> Any:
        """Queue one request and return its value; raises the pool's HTTP errors."""
        future = self._enqueue(spec, task, item, wait=wait, on_chunk=None)
        return await self._answer(spec, task, future)

    async def stream(
        self, spec: ModelSpec, task: str, item: Item, *, wait: bool
    ) -> AsyncIterator[tuple[int, str] | Outcome]:
        """Yield (token id, text) pairs as the worker makes them, then the final Outcome."""
        chunks: asyncio.Queue[Any] = asyncio.Queue()
        future = self._enqueue(spec, task, item, wait=wait, on_chunk=chunks.put_nowait)
        future.add_done_callback(lambda f: chunks.put_nowait(f))
        # The first token may wait for the load; later ones only for the model.
        limit = self.settings.request_timeout_s + self.settings.load_wait_s
        while True:
            try:
                got = await asyncio.wait_for(chunks.get(), limit)
            except TimeoutError:
                future.cancel()
                raise InferenceTimeout() from None
            limit = self.settings.request_timeout_s
            if isinstance(got, asyncio.Future):
                yield Outcome(value=await self._answer(spec, task, got))
                return
            yield got

    def _enqueue(
        self, spec: ModelSpec, task: str, item: Item, *, wait: bool, on_chunk: Any
    ) -> asyncio.Future[Any]:
        queue = self.queues.get(spec.key)
        if queue is None:
            queue = self.queues[spec.key] = _ModelQueue(spec)
        if not wait and self._where(spec.key) is None:
            self._start_consumer(queue)  # starts the load; this caller does not wait for it
            raise ModelLoading(
                f"Model {spec.repo_id} is currently loading",
                estimated_time=self._remaining_load(spec),
            )
        if len(queue.waiting) >= self.settings.queue_size:
            raise QueueFull(
                f"Too many requests waiting for {spec.repo_id}; retry later",
                retry_after_s=self._drain_estimate(queue),
            )
        group = task + json.dumps(item.params, sort_keys=True, default=str)
        pending = _Pending(task, item, group, asyncio.get_running_loop().create_future())
        pending.on_chunk = on_chunk
        queue.waiting.append(pending)
        self.metrics.queue_depth.labels(spec.repo_id).set(len(queue.waiting))
        queue.wake.set()
        self._start_consumer(queue)
        return pending.future

    async def _answer(self, spec: ModelSpec, task: str, future: asyncio.Future[Any]) -> Any:
        limit = self.settings.request_timeout_s
        if self._where(spec.key) is None:
            limit += self.settings.load_wait_s
        started = time.monotonic()
        status = "200"
        try:
            return await asyncio.wait_for(asyncio.shield(future), limit)
        except TimeoutError:
            future.cancel()
            status = "504"
            if self._where(spec.key) is None:
                raise ModelLoading(
                    f"Model {spec.repo_id} is currently loading",
                    estimated_time=self._remaining_load(spec),
                ) from None
            raise InferenceTimeout() from None
        except Exception as exc:
            status = str(getattr(exc, "status", 500))
            raise
        finally:
            self.metrics.requests.labels(spec.repo_id, task, status).inc()
            self.metrics.latency.labels(spec.repo_id, task).observe(time.monotonic() - started)

    def _start_consumer(self, queue: _ModelQueue) -> None:
        if queue.consumer is None or queue.consumer.done():
            queue.consumer = asyncio.get_running_loop().create_task(self._consume(queue))

    # -- the consumer -----------------------------------------------------------------------

    async def _consume(self, queue: _ModelQueue) -> None:
        """Load the model, then run batches while requests wait; exits when the queue is
        empty (the next request starts a new consumer). The model is claimed (inflight)
        from the moment a batch starts forming, so no other model's load evicts it then."""
        spec = queue.spec
        try:
            await self._ensure_loaded(spec)
        except Exception as exc:
            self._fail_all(queue, exc)
            return
        while queue.waiting:
            try:
                link = await self._ensure_loaded(spec)
            except Exception as exc:
                self._fail_all(queue, exc)
                return
            resident = link.models.get(spec.key)
            if resident is None:  # evicted while this consumer was waking up
                continue
            resident.inflight += 1
            try:
                await self._run_batch(queue, link)
            finally:
                resident.inflight -= 1

    async def _run_batch(self, queue: _ModelQueue, link: Link) -> None:
        spec = queue.spec
        batch = await self._take_batch(queue)
        if not batch:
            return
        self.metrics.batch_size.labels(spec.repo_id, batch[0].task).observe(len(batch))
        link.touch(spec.key)
        started = time.monotonic()
        try:
            outcomes = await link.run(
                spec.key, batch[0].task, [p.item for p in batch], batch[0].on_chunk
            )
            queue.batch_seconds = 0.8 * queue.batch_seconds + 0.2 * (time.monotonic() - started)
        except Exception as exc:
            for pending in batch:
                _settle(pending.future, error=exc)
            return
        for pending, outcome in zip(batch, outcomes, strict=True):
            try:
                _settle(pending.future, value=raise_for(outcome))
            except Exception as exc:
                _settle(pending.future, error=exc)

    async def _take_batch(self, queue: _ModelQueue) -> list[_Pending]:
        first = queue.waiting[0]
        if first.on_chunk is not None:  # a stream runs alone
            queue.waiting.popleft()
            return [first] if not first.future.done() else []
        limit = self.settings.max_batch_size
        deadline = first.queued + self.settings.max_wait_ms / 1000
        while len(queue.waiting) < limit and time.monotonic() < deadline:
            queue.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.wake.wait(), deadline - time.monotonic())
        batch: list[_Pending] = []
        rest: deque[_Pending] = deque()
        while queue.waiting:
            pending = queue.waiting.popleft()
            if pending.future.done():  # its caller timed out or went away
                continue
            if len(batch) < limit and pending.group == first.group and pending.on_chunk is None:
                batch.append(pending)
            else:
                rest.append(pending)
        queue.waiting.extendleft(reversed(rest))
        self.metrics.queue_depth.labels(queue.spec.repo_id).set(len(queue.waiting))
        return batch

    def _fail_all(self, queue: _ModelQueue, exc: Exception) -> None:
        while queue.waiting:
            _settle(queue.waiting.popleft().future, error=exc)
        self.metrics.queue_depth.labels(queue.spec.repo_id).set(0)

    # -- placement --------------------------------------------------------------------------

    def _where(self, key: str) -> Link | None:
        """The worker on which key is loaded and ready."""
        for link in self.links:
            resident = link.models.get(key)
            if resident is not None and resident.ready.done() and not resident.ready.exception():
                return link
        return None

    async def _ensure_loaded(self, spec: ModelSpec) -> Link:
        for link in self.links:
            resident = link.models.get(spec.key)
            if resident is not None:
                await asyncio.shield(resident.ready)
                return link
        link = await self._place(spec)
        resident = link.begin_load(spec.load)
        await asyncio.shield(resident.ready)
        seconds = time.monotonic() - resident.started
        self.clock.observe(spec.load.memory, seconds)
        self.metrics.loads.labels(spec.repo_id).inc()
        self.metrics.load_seconds.observe(seconds)
        self.metrics.device_memory.labels(link.name, link.device).set(link.used)
        return link

    async def _place(self, spec: ModelSpec) -> Link:
        """A worker with room for spec, waiting (up to load_wait_s) while every model that
        could make room is busy; UnsupportedModel if the model can never fit."""
        deadline = time.monotonic() + self.settings.load_wait_s
        while (link := self._try_place(spec)) is None:
            if time.monotonic() > deadline:
                raise WorkerUnavailable(
                    "Every loaded model is busy and no memory is free; retry shortly",
                    retry_after_s=5,
                )
            await asyncio.sleep(PLACE_POLL_S)
        return link

    def _try_place(self, spec: ModelSpec) -> Link | None:
        """The live worker with the most room once its evictable models are unloaded (least
        recently used first, models nobody waits for before the others); None if the room
        is not there yet. Checks and reserves without awaiting, so two loads never both
        count on the same free memory."""
        for link in self.links:
            if not link.started:  # spawned lazily: an app that never infers costs nothing
                with contextlib.suppress(OSError):  # a remote worker may come up later
                    link.start()
        alive = [link for link in self.links if link.alive]
        if not alive:
            raise WorkerUnavailable("No inference worker is running; retry shortly")
        need = spec.load.memory
        if need > max(link.budget for link in alive):
            raise UnsupportedModel(
                f"{spec.repo_id} needs about {need} bytes, more than a device may hold "
                f"(ATRIUM_INFERENCE_MEMORY_BUDGET={alive[0].budget})"
            )
        link = max(alive, key=lambda link: link.budget - link.used + self._reclaimable(link))
        if link.budget - link.used + self._reclaimable(link) < need:
            return None
        victims = sorted(self._evictable(link), key=lambda key: self._has_waiters(key))
        for key in victims:
            if link.budget - link.used >= need:
                break
            link.unload(key)
            self.metrics.evictions.labels(key.split("@")[0]).inc()
        return link

    def _evictable(self, link: Link) -> list[str]:
        """Loaded models not running a batch, least recently used first."""
        return [key for key, r in link.models.items() if r.ready.done() and r.inflight == 0]

    def _has_waiters(self, key: str) -> bool:
        queue = self.queues.get(key)
        return bool(queue and queue.waiting)

    def _reclaimable(self, link: Link) -> int:
        return sum(link.models[key].memory for key in self._evictable(link))

    def _remaining_load(self, spec: ModelSpec) -> float:
        for link in self.links:
            resident = link.models.get(spec.key)
            if resident is not None:
                elapsed = time.monotonic() - resident.started
                return max(0.5, self.clock.estimate(spec.load.memory) - elapsed)
        return self.clock.estimate(spec.load.memory)

    def _drain_estimate(self, queue: _ModelQueue) -> float:
        """Seconds until the queue has room, from the model's recent time per batch."""
        batches = len(queue.waiting) / self.settings.max_batch_size
        return max(1.0, batches * queue.batch_seconds)


def _settle(future: asyncio.Future[Any], *, value: Any = None, error: Any = None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def local_devices(settings: InferenceSettings) -> list[str]:
    """One worker per GPU; `workers` CPU workers when there is none (or device=cpu)."""
    if settings.device.startswith("cuda:"):
        return [settings.device]
    gpus = gpu_count() if settings.device in ("auto", "cuda") else 0
    if gpus:
        return [f"cuda:{index}" for index in range(gpus)]
    return ["cpu"] * settings.workers


def gpu_count() -> int:
    """GPUs, counted without importing torch in the API process."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))
