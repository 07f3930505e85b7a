"""The worker process: loads models from repo snapshots and runs batches on one device.

Three kinds of threads share one `Engine` (the models of this process):

- a reader per connection (the spawning API process, or every API replica that connects to
  `atrium worker`) turns messages into work;
- one loader thread materializes snapshots (blob store -> files under the data dir) and loads
  weights, so a slow load never stalls the models already serving;
- one compute thread runs batches in arrival order: torch already uses every core of the device
  inside one batch, so running two at once would only make both slower.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, Listener
from pathlib import Path
from typing import Any

from app.blobs import BlobStore, create_blob_store
from app.config import Settings
from app.inference.config import InferenceSettings
from app.inference.protocol import FileRef, Item, LoadSpec, Outcome
from app.logs import configure_logging, quiet_progress_bars
from app.repos.content import open_content

log = logging.getLogger("atrium.inference.worker")
Reply = Callable[[tuple[Any, ...]], None]
CACHE_DIR = "inference"


class SnapshotCache:
    """Repo files on local disk: each blob once under `blobs/`, and one folder per commit
    whose files link to them (what `from_pretrained` reads)."""

    def __init__(self, blobs: BlobStore, root: Path):
        self.blobs = blobs
        self.root = root

    def folder(self, spec: LoadSpec) -> Path:
        target = self.root / "snapshots" / spec.key.replace("/", "--").replace("@", "--")
        done = target / ".complete"
        if done.exists():
            return target
        for ref in spec.files:
            self._place(ref, target / ref.path)
        done.touch()
        return target

    def _place(self, ref: FileRef, path: Path) -> None:
        blob = self.root / "blobs" / f"{ref.content.kind}-{ref.content.id}"
        if not blob.exists():
            self._download(ref, blob)
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            path.unlink()
        os.link(blob, path)

    def _download(self, ref: FileRef, blob: Path) -> None:
        blob.parent.mkdir(parents=True, exist_ok=True)
        partial = blob.with_name(blob.name + f".{os.getpid()}.part")
        with partial.open("wb") as out:  # streamed: weights are never whole in memory
            for chunk in open_content(self.blobs, ref.content):
                out.write(chunk)
        partial.replace(blob)  # atomic: a reader never sees half a file


class Engine:
    """The models of this process and the two threads that load and run them."""

    def __init__(
        self, core: Settings, settings: InferenceSettings, device: str, *, threads: bool = True
    ):
        """threads=False builds models on demand only (a Ray Serve replica calls `build`)."""
        import torch

        self.settings = settings
        self.device = torch.device(device)
        self.dtype = pick_dtype(settings.dtype, self.device)
        self.cache = SnapshotCache(create_blob_store(core), core.data_dir / CACHE_DIR)
        self.models: dict[str, Any] = {}
        self.loads: queue.Queue[tuple[tuple[Any, ...], Reply]] = queue.Queue()
        self.jobs: queue.Queue[tuple[tuple[Any, ...], Reply]] = queue.Queue()
        if threads:
            threading.Thread(target=self._loop, args=(self.loads,), daemon=True).start()
            threading.Thread(target=self._loop, args=(self.jobs,), daemon=True).start()

    def submit(self, message: tuple[Any, ...], reply: Reply) -> None:
        kind = message[0]
        if kind in ("load", "unload"):
            self.loads.put((message, reply))
        elif kind in ("run", "stream"):
            self.jobs.put((message, reply))
        elif kind == "ping":
            reply(("hello", str(self.device), os.getpid()))

    def _loop(self, inbox: queue.Queue[tuple[tuple[Any, ...], Reply]]) -> None:
        while True:
            message, reply = inbox.get()
            try:
                getattr(self, "_" + message[0])(*message[1:], reply=reply)
            except Exception:  # a bug in one request must not stop the thread
                log.exception("inference worker failed on %s", message[0])

    def _load(self, spec: LoadSpec, *, reply: Reply) -> None:
        if spec.key in self.models:
            reply(("loaded", spec.key, spec.memory, 0.0))
            return
        started = time.monotonic()
        try:
            self.models[spec.key] = self.build(spec)
        except Exception as exc:
            status, message = describe_failure(exc)
            log.warning("loading %s failed: %s", spec.key, message)
            reply(("load_failed", spec.key, status, message))
            return
        reply(("loaded", spec.key, spec.memory, time.monotonic() - started))

    def build(self, spec: LoadSpec) -> Any:
        """Materialize the snapshot (and an adapter's base) and load it on this device."""
        from app.inference.runners import load_runner

        folder = self.cache.folder(spec)
        base = self.cache.folder(spec.base) if spec.base else None
        return load_runner(
            spec.task,
            base or folder,
            self.device,
            self.dtype,
            adapter=folder if base else None,
            max_input_tokens=self.settings.max_input_tokens,
            max_new_tokens=self.settings.max_new_tokens,
            quantize=self.settings.quantize,
        )

    def _unload(self, key: str, *, reply: Reply) -> None:
        runner = self.models.pop(key, None)
        del runner
        free_device_memory(self.device)

    def _run(self, job_id: int, key: str, task: str, items: list[Item], *, reply: Reply) -> None:
        runner = self.models.get(key)
        if runner is None:
            outcomes = [Outcome(status=503, message="model was unloaded; retry")] * len(items)
        else:
            try:
                outcomes = runner.run(task, items)
            except Exception as exc:
                status, message = describe_failure(exc)
                outcomes = [Outcome(status=status, message=message)] * len(items)
        reply(("done", job_id, outcomes))

    def _stream(self, job_id: int, key: str, task: str, item: Item, *, reply: Reply) -> None:
        runner = self.models.get(key)
        if runner is None:
            reply(("done", job_id, [Outcome(status=503, message="model was unloaded; retry")]))
            return
        try:
            outcome = runner.stream(
                task, item, lambda token, piece: reply(("chunk", job_id, (token, piece)))
            )
        except Exception as exc:
            status, message = describe_failure(exc)
            outcome = Outcome(status=status, message=message)
        reply(("done", job_id, [outcome]))


def describe_failure(exc: Exception) -> tuple[int, str]:
    """(status, message) for an error in a worker: input errors are 400, running out of
    memory is a clear 503 (the pool evicts and the client retries), anything else 500."""
    from app.errors import AtriumError

    if isinstance(exc, AtriumError):
        return exc.status, exc.message
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        return 503, "The inference device ran out of memory; retry shortly"
    if isinstance(exc, (OSError, ValueError, KeyError)):
        return 400, f"The model files cannot be loaded: {exc}"
    return 500, f"Inference failed: {type(exc).__name__}"


def pick_dtype(name: str, device: Any) -> Any:
    import torch

    if name != "auto":
        return getattr(torch, name)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def free_device_memory(device: Any) -> None:
    import gc

    gc.collect()
    if device.type == "cuda":
        import torch

        torch.cuda.empty_cache()


def serve_connection(conn: Connection, engine: Engine) -> None:
    """Read messages from one API process until it goes away."""
    lock = threading.Lock()

    def reply(message: tuple[Any, ...]) -> None:
        # The API process may be gone; its own reader notices.
        with lock, contextlib.suppress(OSError, EOFError):
            conn.send(message)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        engine.submit(message, reply)


def configure_threads(settings: InferenceSettings, device: str) -> None:
    import torch

    threads = settings.worker_threads or max(1, (os.cpu_count() or 1) // settings.workers)
    if device == "cpu":
        torch.set_num_threads(threads)


def spawned_main(
    conn: Connection, core: Settings, settings: InferenceSettings, device: str
) -> None:
    """Entry point of a worker started by the API process (multiprocessing spawn)."""
    configure_logging(core.log_level)  # a spawned process starts with none
    quiet_progress_bars()
    configure_threads(settings, device)
    engine = Engine(core, settings, device)
    serve_connection(conn, engine)
    os._exit(0)  # the API process is gone: leave without waiting for worker threads


def serve_forever(
    core: Settings, settings: InferenceSettings, device: str, address: tuple[str, int]
) -> None:
    """`atrium worker`: accept API processes on address, authenticated by the secret key."""
    configure_logging(core.log_level)
    quiet_progress_bars()
    configure_threads(settings, device)
    engine = Engine(core, settings, device)
    with Listener(address, authkey=core.secret) as listener:
        log.warning("atrium worker on %s:%d, device %s", *address, device)
        while True:
            try:
                conn = listener.accept()
            except (OSError, EOFError) as exc:  # a caller with the wrong key
                log.warning("refused a connection: %s", exc)
                continue
            threading.Thread(target=serve_connection, args=(conn, engine), daemon=True).start()
