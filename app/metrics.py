"""Prometheus metrics: `/metrics` for HTTP traffic, storage operations, database and usage.

Every app gets its own `CollectorRegistry` (tests build several apps in one process, and the
global registry refuses a second metric of the same name). A replica is one process (`atrium
serve`); each is scraped on its own address (deploy/prometheus.yml, the Kubernetes pod
annotations) and Prometheus sums across them, so no counter is shared between processes.

Labels stay bounded: the route label is the route's path *template* (`/api/models/{repo_id}`),
never the raw path, and requests that match no route share the label `unmatched`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.blobs import BlobInfo, BlobStore
from app.deps import MetricsReader

UNMATCHED = "unmatched"
# Latency buckets in seconds: API reads sit at the low end, large transfers at the top.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
USAGE_CACHE_S = 30.0  # storage-per-namespace is a database query: at most once per 30 s
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class Metrics:
    """The metrics of one app, on its own registry; other domains may add theirs to it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(
            "atrium_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=reg,
        )
        self.latency = Histogram(
            "atrium_http_request_duration_seconds",
            "Time from request start to the end of the response body",
            ["method", "route"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.bytes_in = Counter(
            "atrium_http_received_bytes", "Request body bytes received", ["route"], registry=reg
        )
        self.bytes_out = Counter(
            "atrium_http_sent_bytes", "Response body bytes sent", ["route"], registry=reg
        )
        self.in_progress = Gauge(
            "atrium_http_requests_in_progress",
            "Requests being served; method POST/PUT/PATCH are uploads",
            ["method"],
            registry=reg,
        )
        self.storage_ops = Counter(
            "atrium_storage_operations",
            "Blob store operations by kind and outcome",
            ["op", "outcome"],
            registry=reg,
        )
        self.storage_latency = Histogram(
            "atrium_storage_operation_duration_seconds",
            "Blob store operation time (for open: until the first byte can be read)",
            ["op"],
            buckets=LATENCY_BUCKETS_S,
            registry=reg,
        )
        self.storage_bytes = Counter(
            "atrium_storage_bytes",
            "Bytes written to and read from the blob store",
            ["direction"],
            registry=reg,
        )

    def expose(self) -> bytes:
        """Every metric in the Prometheus text format."""
        return generate_latest(self.registry)

    def add_collector(self, collector: Collector) -> None:
        """A collector computed at scrape time: database pool, usage, the inference pool's."""
        self.registry.register(collector)


def route_label(scope: Scope) -> str:
    """The matched route's path template, or `unmatched` (keeps the label set small)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) else UNMATCHED


class MetricsMiddleware:
    """Counts every HTTP request: status, latency to the last body byte, bytes each way."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        started = time.perf_counter()
        counts = {"in": 0, "out": 0, "status": 500}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                counts["in"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                counts["status"] = message["status"]
            elif message["type"] == "http.response.body":
                counts["out"] += len(message.get("body", b""))
            await send(message)

        gauge = self.metrics.in_progress.labels(method)
        gauge.inc()
        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            gauge.dec()
            self._record(scope, method, counts, time.perf_counter() - started)

    def _record(self, scope: Scope, method: str, counts: dict[str, int], seconds: float) -> None:
        route = route_label(scope)
        m = self.metrics
        m.requests.labels(method, route, str(counts["status"])).inc()
        m.latency.labels(method, route).observe(seconds)
        if counts["in"]:
            m.bytes_in.labels(route).inc(counts["in"])
        if counts["out"]:
            m.bytes_out.labels(route).inc(counts["out"])


class InstrumentedBlobStore:
    """A BlobStore that counts and times each operation of the store it wraps.

    Methods outside the protocol (store-specific extensions) pass straight through.
    """

    def __init__(self, inner: BlobStore, metrics: Metrics):
        self.inner = inner
        self.metrics = metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _timed(self, op: str, call: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        try:
            result = call()
        except Exception:
            self.metrics.storage_ops.labels(op, "error").inc()
            raise
        self.metrics.storage_ops.labels(op, "ok").inc()
        self.metrics.storage_latency.labels(op).observe(time.perf_counter() - started)
        return result

    def put(
        self,
        key: str,
        chunks: Iterable[bytes],
        *,
        sha256: str | None = None,
        size: int | None = None,
    ) -> BlobInfo:
        info: BlobInfo = self._timed(
            "put", lambda: self.inner.put(key, chunks, sha256=sha256, size=size)
        )
        self.metrics.storage_bytes.labels("write").inc(info.size)
        return info

    def open(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        # Called eagerly, so that BlobNotFound is raised here (before a response starts),
        # as the wrapped stores do; only the streaming is wrapped.
        stream = self._timed("open", lambda: self.inner.open(key, start, length))
        return self._counted(stream)

    def _counted(self, stream: Iterator[bytes]) -> Iterator[bytes]:
        read = self.metrics.storage_bytes.labels("read")
        try:
            for chunk in stream:
                read.inc(len(chunk))
                yield chunk
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()  # a reader that stopped early releases the file or connection now

    def size(self, key: str) -> int | None:
        size: int | None = self._timed("size", lambda: self.inner.size(key))
        return size

    def delete(self, key: str) -> None:
        self._timed("delete", lambda: self.inner.delete(key))

    def keys(self, prefix: str = "") -> Iterator[tuple[str, float]]:
        return self.inner.keys(prefix)

    def presigned_url(self, key: str, expires_s: int) -> str | None:
        url: str | None = self._timed("presign", lambda: self.inner.presigned_url(key, expires_s))
        return url

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)

    def check(self) -> None:
        self.inner.check()


class DatabasePoolCollector(Collector):
    """Connections of this process's SQLAlchemy pool, read at scrape time."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "atrium_db_pool_connections", "Database pool connections by state", labels=["state"]
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()  # registering must not touch the database (not migrated yet)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool: Any = self.engine.pool
        family = self._family()
        for state, method in (("in_use", "checkedout"), ("idle", "checkedin"), ("size", "size")):
            reader = getattr(pool, method, None)
            if callable(reader):
                family.add_metric([state], float(reader()))
        yield family


class StorageUsageCollector(Collector):
    """Bytes stored per namespace (sum of its repos' `used_storage`), cached between scrapes."""

    def __init__(self, factory: sessionmaker[Session]):
        self.factory = factory
        self._lock = threading.Lock()
        self._cached: tuple[float, list[tuple[str, str, int]]] = (-USAGE_CACHE_S, [])

    def _rows(self) -> list[tuple[str, str, int]]:
        from app.repos.models import Repo

        with self._lock:
            at, rows = self._cached
            if time.monotonic() - at < USAGE_CACHE_S:
                return rows
            query = select(Repo.namespace, Repo.type, func.sum(Repo.used_storage)).group_by(
                Repo.namespace, Repo.type
            )
            with self.factory() as session:
                rows = [(ns, kind, int(total or 0)) for ns, kind, total in session.execute(query)]
            self._cached = (time.monotonic(), rows)
            return rows

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "atrium_storage_used_bytes",
            "Bytes used by the repos of each namespace, by repo type",
            labels=["namespace", "type"],
        )

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()  # registering must not touch the database (not migrated yet)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        for namespace, kind, total in self._rows():
            family.add_metric([namespace, kind], float(total))
        yield family


def install_metrics(app: FastAPI) -> Metrics:
    """Attach metrics to an app built by `create_app`: middleware, collectors, `/metrics`.

    Returns the Metrics so that the blob store can be wrapped with `InstrumentedBlobStore`.
    """
    metrics = Metrics()
    metrics.add_collector(DatabasePoolCollector(app.state.engine))
    metrics.add_collector(StorageUsageCollector(app.state.sessionmaker))
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.include_router(_router())
    return metrics


def _router() -> APIRouter:
    router = APIRouter(tags=["system"])

    @router.get("/metrics", include_in_schema=False, dependencies=[MetricsReader])
    def prometheus_metrics(request: Request) -> Response:
        metrics: Metrics = request.app.state.metrics
        return Response(metrics.expose(), media_type=CONTENT_TYPE_LATEST)

    return router
