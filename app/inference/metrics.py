"""Prometheus metrics of the inference pool, in the pool's own registry (one per app)."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class InferenceMetrics:
    def __init__(self) -> None:
        self.registry = reg = CollectorRegistry(auto_describe=True)
        self.queue_depth = Gauge(
            "atrium_inference_queue_depth", "Requests waiting per model", ["model"], registry=reg
        )
        self.batch_size = Histogram(
            "atrium_inference_batch_size", "Requests per batch", ["model", "task"],
            buckets=BATCH_BUCKETS, registry=reg,
        )  # fmt: skip
        self.latency = Histogram(
            "atrium_inference_latency_seconds", "Time from queueing to answer", ["model", "task"],
            buckets=LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip
        self.requests = Counter(
            "atrium_inference_requests", "Answered requests", ["model", "task", "status"],
            registry=reg,
        )  # fmt: skip
        self.loads = Counter("atrium_inference_loads", "Model loads", ["model"], registry=reg)
        self.load_seconds = Histogram(
            "atrium_inference_load_seconds", "Time to load a model", registry=reg,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300),
        )  # fmt: skip
        self.evictions = Counter(
            "atrium_inference_evictions", "Models unloaded to make room", ["model"], registry=reg
        )
        self.device_memory = Gauge(
            "atrium_inference_device_memory_bytes", "Estimated bytes of loaded models",
            ["worker", "device"], registry=reg,
        )  # fmt: skip
        self.restarts = Counter(
            "atrium_inference_worker_restarts", "Workers restarted after a crash", registry=reg
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterable[Metric]:
        """Lets the app-wide /metrics registry include these (a Collector)."""
        return self.registry.collect()
