"""A live Atrium server in a subprocess, on either backend, for end-to-end tests."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
METRICS_TOKEN = "metrics-" + secrets.token_hex(16)  # ATRIUM_METRICS_TOKEN of every test server
PG_ADMIN_URL = os.environ.get("ATRIUM_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
# Servers on a shared (PostgreSQL) database must be given the key their replicas share.
SHARED_SECRET_ENV = {"ATRIUM_SECRET_KEY": secrets.token_urlsafe(48)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes] | None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@contextmanager
def moto_server() -> Iterator[str]:
    """A real S3 protocol server (moto) on loopback, in its own process."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **AWS_ENV},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/", proc)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def postgres_available() -> bool:
    import psycopg

    try:
        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
        return True
    except psycopg.OperationalError:
        return False


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the local PostgreSQL, dropped afterwards."""
    import psycopg

    name = f"atrium_test_{secrets.token_hex(6)}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Backend:
    """Environment for one storage backend: sqlite+folder or postgres+s3."""

    name: str
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)

    def settings_env(self) -> dict[str, str]:
        return {"ATRIUM_DATA_DIR": str(self.data_dir), **self.env}


@dataclass
class LiveServer:
    backend: Backend
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    _app: Any = None

    @property
    def env(self) -> dict[str, str]:
        return self.backend.settings_env()

    def app(self) -> Any:
        """An in-process app on the same database and store, for direct setup in tests."""
        if self._app is None:
            from app.config import Settings
            from app.main import create_app

            saved = dict(os.environ)
            os.environ.update(self.env)
            try:
                self._app = create_app(Settings())
            finally:
                os.environ.clear()
                os.environ.update(saved)
        return self._app

    def new_user(
        self,
        name: str | None = None,
        *,
        admin: bool = False,
        role: str = "write",
        password: str | None = None,
    ) -> tuple[str, str]:
        """Create a user with a token of role; returns (name, token)."""
        from app.auth.service import create_token, create_user
        from app.db.engine import write_transaction

        name = name or f"user{secrets.token_hex(4)}"
        with write_transaction(self.app().state.sessionmaker) as session:
            user = create_user(session, name, is_admin=admin, password=password)
            issued = create_token(session, user, role=role, label="test")
        return name, issued.secret

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env={**os.environ, **self.env},
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )

    def metrics(self, path: str = "/metrics") -> str:
        """The metrics text, read as Prometheus reads it (with the scrape credential)."""
        headers = {"Authorization": f"Bearer {METRICS_TOKEN}"}
        response = httpx.get(f"{self.url}{path}", headers=headers, timeout=30)
        response.raise_for_status()
        return response.text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._app is not None:
            self._app.state.engine.dispose()


def start_server(backend: Backend, extra_env: dict[str, str] | None = None) -> LiveServer:
    port = free_port()
    backend.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = backend.data_dir / f"server-{port}.log"
    env = {
        **os.environ,
        "ATRIUM_METRICS_TOKEN": METRICS_TOKEN,
        # Webhook receivers in tests listen on loopback; retries come fast.
        "ATRIUM_WEBHOOK_ALLOW_PRIVATE": "true",
        "ATRIUM_WEBHOOK_RETRY_SECONDS": "0.2",
        "ATRIUM_WEBHOOK_POLL_SECONDS": "0.3",
        **backend.settings_env(),
        **(extra_env or {}),
    }
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/health", proc)
    except Exception as exc:
        proc.kill()
        raise RuntimeError(f"server failed to start: {log_path.read_text()[-3000:]}") from exc
    return LiveServer(backend=backend, url=url, proc=proc, log_path=log_path)


@contextmanager
def private_backend(kind: str, data_dir: Path, s3_endpoint: str | None) -> Iterator[Backend]:
    """A new empty database and store of the given kind, dropped afterwards."""
    if kind == "sqlite":
        yield Backend("sqlite", data_dir)
        return
    assert s3_endpoint is not None
    os.environ.update(AWS_ENV)
    with postgres_database() as db_url:
        yield Backend(
            "postgres",
            data_dir,
            {
                "ATRIUM_DATABASE_URL": db_url,
                "ATRIUM_STORAGE_URL": f"s3://atrium-ops-{secrets.token_hex(4)}/blobs",
                "ATRIUM_S3_ENDPOINT_URL": s3_endpoint,
                **AWS_ENV,
                **SHARED_SECRET_ENV,
            },
        )


@contextmanager
def private_server(kind: str, data_dir: Path, s3_endpoint: str | None) -> Iterator[LiveServer]:
    """A live server on an empty store of its own, for tests that walk or sweep the whole
    store (gc, backup, fsck): they then see only what they made."""
    with private_backend(kind, data_dir, s3_endpoint) as backend:
        live = start_server(backend)
        try:
            yield live
        finally:
            live.stop()
