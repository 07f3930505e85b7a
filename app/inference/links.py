"""The API process's handle on one worker: its connection, its models, its pending jobs.

A reader thread per worker receives messages and hands them to the event loop. When the
connection breaks (the process was killed, the machine went away) every pending job and load
fails at once with a clean 503, and the link starts a new worker (or reconnects) by itself.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import multiprocessing
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Client, Connection
from multiprocessing.process import BaseProcess
from typing import Any

from app.config import Settings
from app.inference.config import InferenceSettings
from app.inference.errors import UnsupportedModel, WorkerUnavailable, from_status
from app.inference.protocol import Item, LoadSpec, Outcome

log = logging.getLogger("atrium.inference")
RECONNECT_DELAY_S = 1.0  # between attempts to reach a remote worker
_job_ids = itertools.count(1)


@dataclass
class Resident:
    """A model loaded (or being loaded) on a worker."""

    memory: int
    ready: asyncio.Future[None]
    started: float = field(default_factory=time.monotonic)
    inflight: int = 0  # batches being formed or run: such a model is never evicted


@dataclass
class _Job:
    future: asyncio.Future[list[Outcome]]
    on_chunk: Callable[[Any], None] | None = None


class WorkerLink:
    """One worker process, spawned here or reached at `host:port` (`atrium worker`)."""

    def __init__(
        self,
        name: str,
        device: str,
        core: Settings,
        settings: InferenceSettings,
        loop: asyncio.AbstractEventLoop,
        *,
        address: tuple[str, int] | None = None,
        on_lost: Callable[[WorkerLink], None] = lambda link: None,
    ):
        self.name, self.device = name, device
        self.core, self.settings, self.loop = core, settings, loop
        self.address = address
        self.on_lost = on_lost
        self.budget = settings.memory_budget
        self.models: OrderedDict[str, Resident] = OrderedDict()  # least recently used first
        self.jobs: dict[int, _Job] = {}
        self.conn: Connection | None = None
        self.process: BaseProcess | None = None
        self.alive = False
        self.started = False  # workers start on the first request, not with the app
        self.closing = False
        self._send_lock = threading.Lock()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn the worker (or connect to it); OSError when a remote one is unreachable."""
        if self.address is None:
            self._spawn()
        else:
            self.conn = Client(self.address, authkey=self.core.secret)
        self.started = self.alive = True
        threading.Thread(target=self._read, args=(self.conn,), daemon=True).start()

    def _spawn(self) -> None:
        from app.inference.worker import spawned_main

        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        process = ctx.Process(
            target=spawned_main,
            args=(theirs, self.core, self.settings, self.device),
            name=f"atrium-inference-{self.name}",
            daemon=True,
        )
        process.start()
        theirs.close()
        self.conn, self.process = ours, process

    def close(self) -> None:
        self.closing = True
        if self.conn is not None:
            self.conn.close()
        if self.process is not None:
            self.process.terminate()
            self.process.join(5)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def _read(self, conn: Connection) -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            self.loop.call_soon_threadsafe(self._dispatch, message)
        if not self.closing:
            self.loop.call_soon_threadsafe(self._lost)

    def _lost(self) -> None:
        """The worker is gone: fail what it held, then bring a new one up."""
        if not self.alive:
            return
        self.alive = False
        log.warning("inference worker %s (pid %s) was lost; restarting", self.name, self.pid)
        error = WorkerUnavailable("The inference worker crashed while running this request")
        for job in self.jobs.values():
            if not job.future.done():
                job.future.set_exception(error)
        for resident in self.models.values():
            if not resident.ready.done():
                resident.ready.set_exception(error)
        self.jobs.clear()
        self.models.clear()
        self.on_lost(self)
        threading.Thread(target=self._restart, daemon=True).start()

    def _restart(self) -> None:
        if self.process is not None:
            self.process.join(5)
        while not self.closing:
            try:
                self.start()
                return
            except OSError as exc:
                log.warning("inference worker %s not reachable: %s", self.name, exc)
                time.sleep(RECONNECT_DELAY_S)

    # -- messages ---------------------------------------------------------------------------

    def send(self, message: tuple[Any, ...]) -> None:
        if not self.alive or self.conn is None:
            raise WorkerUnavailable("The inference worker is restarting")
        try:
            with self._send_lock:
                self.conn.send(message)
        except (OSError, ValueError):
            raise WorkerUnavailable("The inference worker is restarting") from None

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "done":
            job = self.jobs.pop(message[1], None)
            if job is not None and not job.future.done():
                job.future.set_result(message[2])
        elif kind == "chunk":
            job = self.jobs.get(message[1])
            if job is not None and job.on_chunk is not None:
                job.on_chunk(message[2])
        elif kind == "loaded":
            resident = self.models.get(message[1])
            if resident is not None and not resident.ready.done():
                resident.ready.set_result(None)
        elif kind == "load_failed":
            resident = self.models.pop(message[1], None)
            if resident is not None and not resident.ready.done():
                error = from_status(message[2], message[3])
                if message[2] == 400:
                    error = UnsupportedModel(message[3])
                resident.ready.set_exception(error)

    # -- models -----------------------------------------------------------------------------

    @property
    def used(self) -> int:
        return sum(r.memory for r in self.models.values())

    def begin_load(self, spec: LoadSpec) -> Resident:
        resident = Resident(memory=spec.memory, ready=self.loop.create_future())
        # Nobody may be waiting when a load fails; keep asyncio from logging that.
        resident.ready.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.models[spec.key] = resident
        self.send(("load", spec))
        return resident

    def unload(self, key: str) -> None:
        self.models.pop(key, None)
        if self.alive:
            self.send(("unload", key))

    def touch(self, key: str) -> None:
        self.models.move_to_end(key)

    async def run(
        self,
        key: str,
        task: str,
        items: list[Item],
        on_chunk: Callable[[Any], None] | None = None,
    ) -> list[Outcome]:
        """Send one batch (or one streamed request) and wait for its outcomes."""
        job_id = next(_job_ids)
        job = _Job(self.loop.create_future(), on_chunk)
        self.jobs[job_id] = job
        try:
            if on_chunk is None:
                self.send(("run", job_id, key, task, items))
            else:
                self.send(("stream", job_id, key, task, items[0]))
            return await job.future
        finally:
            self.jobs.pop(job_id, None)


def raise_for(outcome: Outcome) -> Any:
    if outcome.ok:
        return outcome.value
    raise from_status(outcome.status, outcome.message)
