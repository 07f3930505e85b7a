"""When the database cannot serve a request now — every pooled connection busy, or the server
refusing new connections — the caller gets 503 with Retry-After (huggingface_hub retries
those), never a 500, and the server recovers by itself once connections free up."""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest
from huggingface_hub import HfApi
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.db.engine import database_unavailable
from tests.live import Backend, start_server

ONE_CONNECTION = {
    "ATRIUM_DATABASE_POOL_SIZE": "1",
    "ATRIUM_DATABASE_MAX_OVERFLOW": "0",
    "ATRIUM_DATABASE_POOL_TIMEOUT": "1",
}


def _dsn(backend: Backend) -> str:
    return backend.env["ATRIUM_DATABASE_URL"].replace("+psycopg", "")


def _wait_for_a_blocked_query(dsn: str) -> None:
    deadline = time.monotonic() + 20
    with psycopg.connect(dsn, autocommit=True) as probe:
        while time.monotonic() < deadline:
            row = probe.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the first request never waited on the lock")


def test_a_request_that_finds_no_free_connection_is_answered_503(backend: Backend) -> None:
    if backend.name != "postgres":
        pytest.skip("the connection pool limit is PostgreSQL's")
    live = start_server(backend, extra_env=ONE_CONNECTION)
    try:
        with psycopg.connect(_dsn(backend)) as locker, ThreadPoolExecutor(1) as pool:
            # The first request takes the server's only connection and waits on the lock.
            locker.execute("LOCK TABLE repos IN ACCESS EXCLUSIVE MODE")
            first = pool.submit(httpx.get, f"{live.url}/api/models/nobody/held", timeout=60)
            _wait_for_a_blocked_query(_dsn(backend))
            started = time.monotonic()
            second = httpx.get(f"{live.url}/api/models/nobody/waits", timeout=60)
            waited = time.monotonic() - started
            assert second.status_code == 503, second.text
            assert second.headers["Retry-After"] == "2"
            assert second.json()["error"] == "The database is busy, retry later"
            assert waited < 20, "the pool timeout was not applied"
            locker.rollback()
            assert first.result().status_code == 404
        assert httpx.get(f"{live.url}/api/models/nobody/after").status_code == 404
        assert "database unavailable on /api/models/nobody/waits" in live.log_path.read_text()
    finally:
        live.stop()


def test_a_refused_connection_is_unavailable_and_a_wrong_query_is_not(
    backend: Backend, tmp_path: Path
) -> None:
    if backend.name == "postgres":
        role = f"atrium_none_{secrets.token_hex(4)}"
        with psycopg.connect(_dsn(backend), autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT 0")
            try:
                url = make_url(backend.env["ATRIUM_DATABASE_URL"]).set(username=role)
                engine = create_engine(url)
                with pytest.raises(OperationalError) as refused:
                    engine.connect()
                engine.dispose()
            finally:
                admin.execute(f"DROP ROLE {role}")
        assert "too many connections" in str(refused.value)
        assert database_unavailable(refused.value)
    path = tmp_path / "plain.db"
    sqlite3.connect(path).close()
    engine = create_engine(f"sqlite:///{path}")
    with pytest.raises(OperationalError) as wrong, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))
    assert not database_unavailable(wrong.value)


def test_a_download_being_read_and_waiting_requests_hold_no_connection(
    backend: Backend,
) -> None:
    if backend.name != "postgres":
        pytest.skip("the connection pool limit is PostgreSQL's")
    live = start_server(backend, extra_env={**ONE_CONNECTION, "ATRIUM_DATABASE_POOL_TIMEOUT": "10"})
    try:
        name, token = live.new_user()
        repo_id = f"{name}/pool-{secrets.token_hex(3)}"
        api = HfApi(endpoint=live.url, token=token)
        api.create_repo(repo_id)
        api.upload_file(
            path_or_fileobj=os.urandom(8 * 1024**2), path_in_repo="big.bin", repo_id=repo_id
        )
        auth = {"Authorization": f"Bearer {token}"}
        url = f"{live.url}/{repo_id}/resolve/main/big.bin"
        with httpx.stream("GET", url, headers=auth, follow_redirects=True, timeout=30) as download:
            assert download.status_code == 200
            next(download.iter_bytes(65536))
            # The download is open and unread; the one connection is free for others.
            with ThreadPoolExecutor(8) as pool:
                answers = list(
                    pool.map(
                        lambda _: httpx.get(
                            f"{live.url}/api/models/{repo_id}", headers=auth, timeout=30
                        ),
                        range(16),
                    )
                )
        assert [a.status_code for a in answers] == [200] * 16
    finally:
        live.stop()


def test_health_answers_while_every_request_thread_and_connection_is_taken(
    backend: Backend,
) -> None:
    if backend.name != "postgres":
        pytest.skip("a request is held on a PostgreSQL lock")
    live = start_server(
        backend,
        extra_env={
            **ONE_CONNECTION,
            "ATRIUM_REQUEST_THREADS": "1",
            "ATRIUM_DATABASE_POOL_TIMEOUT": "30",
        },
    )
    try:
        with psycopg.connect(_dsn(backend)) as locker, ThreadPoolExecutor(2) as pool:
            locker.execute("LOCK TABLE repos IN ACCESS EXCLUSIVE MODE")
            held = pool.submit(httpx.get, f"{live.url}/api/models/nobody/held", timeout=60)
            _wait_for_a_blocked_query(_dsn(backend))
            queued = pool.submit(httpx.get, f"{live.url}/api/models/nobody/queued", timeout=60)
            started = time.monotonic()
            health = httpx.get(f"{live.url}/health", timeout=30)
            assert health.status_code == 200
            assert time.monotonic() - started < 5, "the health check waited for the load"
            assert not held.done() and not queued.done()
            locker.rollback()
            assert held.result().status_code == queued.result().status_code == 404
    finally:
        live.stop()
