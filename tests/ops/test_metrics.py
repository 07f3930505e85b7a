"""`/metrics` in Prometheus format: traffic by route template, bytes, storage, pool, usage."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from huggingface_hub import hf_hub_download
from prometheus_client.parser import text_string_to_metric_families

from app.blobs import BlobStore
from app.blobs.local import LocalBlobStore
from app.metrics import InstrumentedBlobStore, Metrics, StorageUsageCollector
from tests.hub.readkit import make_repo, new_owner, no_xet
from tests.live import LiveServer

__all__ = ["no_xet"]  # the autouse fixture: downloads over plain HTTP

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: LiveServer) -> Samples:
    text = server.metrics()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def test_requests_are_counted_by_route_template_not_raw_path(
    server: LiveServer, hf_home: object
) -> None:
    owner = new_owner(server)
    repo, _ = make_repo(owner, "metered", {"config.json": b'{"a": 1}'}, {"w.bin": b"x" * 5000})
    headers = {"authorization": f"Bearer {owner.token}"}
    before = scrape(server)
    path = hf_hub_download(repo.repo_id, "w.bin", endpoint=server.url, token=owner.token)
    assert Path(path).stat().st_size == 5000
    for _ in range(2):
        url = f"{server.url}/{repo.repo_id}/resolve/main/w.bin"
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200
    httpx.get(f"{server.url}/api/models/{repo.repo_id}", headers=headers, timeout=10)
    after = scrape(server)

    def grew(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    routes = {dict(labels).get("route") for (name, labels) in after if "http" in name}
    assert not any(repo.repo_id in (route or "") for route in routes), routes
    assert any(r and r.startswith("/api/models/{") for r in routes), routes
    resolve = [r for r in routes if r and "/resolve/" in r]
    assert resolve, routes
    downloads = sum(
        grew("atrium_http_requests_total", method="GET", status="200", route=r) for r in resolve
    )
    assert downloads == 3
    assert grew("atrium_http_sent_bytes_total") >= 3 * 5000
    assert grew("atrium_storage_bytes_total", direction="read") >= 3 * 5000
    assert grew("atrium_http_request_duration_seconds_count", method="GET") >= 4


def test_unknown_paths_share_one_label(server: LiveServer) -> None:
    for index in range(3):
        httpx.get(f"{server.url}/no/such/{index}/route/at/all", timeout=10)
    samples = scrape(server)
    routes = {dict(labels).get("route") for (name, labels) in samples if "http" in name}
    assert not any(route and "/no/such" in route for route in routes)
    assert total(samples, "atrium_http_requests_total", route="unmatched") >= 3


def test_storage_pool_and_usage_are_exported(server: LiveServer) -> None:
    samples = scrape(server)
    names = {name for name, _ in samples}
    assert "atrium_storage_operations_total" in names
    assert "atrium_db_pool_connections" in names
    assert "atrium_http_requests_in_progress" in names
    owner = new_owner(server)
    make_repo(owner, "used", {"a.txt": b"a"})
    # A fresh collector on the same database: the server's caches its answer for a while.
    (family,) = StorageUsageCollector(server.app().state.sessionmaker).collect()
    assert (owner.name, "model") in {tuple(s.labels.values()) for s in family.samples}


def test_instrumented_store_keeps_the_store_contract(tmp_path: Path) -> None:
    metrics = Metrics()
    store: BlobStore = InstrumentedBlobStore(LocalBlobStore(tmp_path / "b"), metrics)
    store.put("lfs/abc", [b"hello"], size=5)
    assert b"".join(store.open("lfs/abc", 1, 3)) == b"ell"
    with pytest.raises(Exception, match="not found"):
        store.open("lfs/missing")  # raised at once, before any byte is read
    assert store.size("lfs/abc") == 5
    text = metrics.expose().decode()
    assert 'atrium_storage_bytes_total{direction="write"} 5.0' in text
    assert 'atrium_storage_bytes_total{direction="read"} 3.0' in text
    assert 'atrium_storage_operations_total{op="open",outcome="error"} 1.0' in text


@pytest.mark.parametrize("path", ["/metrics", "/api/inference/metrics"])
def test_metrics_are_for_the_scraper_and_administrators_only(server: LiveServer, path: str) -> None:
    """Their series name private repos and namespaces: anyone else is refused."""
    owner = new_owner(server)
    make_repo(owner, "secret-metrics", {"a.txt": b"x"}, private=True)
    _, admin = server.new_user(admin=True)
    url = f"{server.url}{path}"
    anonymous = httpx.get(url, timeout=10)
    assert anonymous.status_code == 401 and "secret-metrics" not in anonymous.text
    member = httpx.get(url, headers={"Authorization": f"Bearer {owner.token}"}, timeout=10)
    assert member.status_code == 403 and "secret-metrics" not in member.text
    wrong = httpx.get(url, headers={"Authorization": "Bearer metrics-guess"}, timeout=10)
    assert wrong.status_code == 401
    assert (
        httpx.get(url, headers={"Authorization": f"Bearer {admin}"}, timeout=10).status_code == 200
    )
    assert server.metrics(path)  # the scrape credential (ATRIUM_METRICS_TOKEN)
