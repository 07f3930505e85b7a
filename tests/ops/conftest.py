"""Fixtures of the operations tests: servers on a database and bucket of their own.

gc, backup and restore act on the whole store, so they get a backend that no other test
writes to (same kind as the session's: sqlite+folder or postgres+S3).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import LiveServer, private_server


@pytest.fixture(scope="session")
def own_server(
    backend_name: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """A live server on a backend no other area writes to, for tests that sweep or copy the
    whole store (gc: only what these tests made; backup: a known set of objects)."""
    endpoint = request.getfixturevalue("s3_endpoint") if backend_name == "postgres" else None
    with private_server(backend_name, tmp_path_factory.mktemp("ops"), endpoint) as live:
        yield live
