"""Fixtures of the operations tests: servers on a database and bucket of their own.

gc, backup and restore act on the whole store, so they get a backend that no other test
writes to (same kind as the session's: sqlite+folder or postgres+S3).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.live import AWS_ENV, Backend, LiveServer, postgres_database, start_server


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
            },
        )


@pytest.fixture(scope="session")
def own_server(
    backend_name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """A live server on a backend no other area writes to, for tests that sweep or copy the
    whole store (gc: only what these tests made; backup: a known set of objects)."""
    endpoint = request.getfixturevalue("s3_endpoint") if backend_name == "postgres" else None
    with private_backend(backend_name, tmp_path_factory.mktemp("ops"), endpoint) as backend:
        live = start_server(backend)
        yield live
        live.stop()
