"""Schema-driven fuzzing (issue 10 §5): schemathesis generates requests for every operation of
the server's own /openapi.json, valid and invalid, anonymous and with a write token of a
throwaway user; no answer may be a 5xx or break the schema, and the server stays healthy.
Inference routes are left out (a valid request loads a model); the dataset and space copies
of each repo route share the model route's handler."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.live import LiveServer
from tests.reliability.figures import FUZZ, record

SKIPPED_PREFIXES = ("/api/datasets/", "/api/spaces/", "/datasets/", "/spaces/", "/v1/", "/models/")
SKIPPED_TAGS = {"inference"}
# No 5xx, and what an operation documents (its 200 body, its media type) is what it sends.
# Error statuses are not listed per operation (every route answers the Hub's error shape), and
# accepting lenient input is the Hub's behaviour that huggingface_hub relies on, so the
# status-code and negative-data checks are not asked for.
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def schema(server: LiveServer) -> Any:
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


@pytest.fixture(scope="module")
def fuzz_token(server: LiveServer) -> Iterator[str]:
    _, token = server.new_user()
    created = httpx.post(
        f"{server.url}/api/repos/create",
        json={"name": "fuzz", "type": "model"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert created.status_code == 200, created.text
    yield token


def operations(schema: Any) -> list[Any]:
    chosen = []
    for result in schema.get_all_operations():
        operation = result.ok()
        tags = set(operation.definition.raw.get("tags", []))
        if operation.path.startswith(SKIPPED_PREFIXES) or tags & SKIPPED_TAGS:
            continue
        chosen.append(operation)
    return chosen


def fuzz(server: LiveServer, operation: Any, headers: dict[str, str], examples: int) -> list[str]:
    """Run one operation's generated cases; the failures, one line each."""
    failures: list[str] = []
    strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
        GenerationMode.NEGATIVE
    )

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(base_url=server.url, headers=headers, timeout=30)
        record(FUZZ)
        try:
            case.validate_response(response, checks=CHECKS)
        except FailureGroup as group:
            for failure in group.exceptions:
                title = str(failure).strip().splitlines()[0]
                failures.append(
                    f"{operation.label}: {title}: {case.method} {case.formatted_path}"
                    f" -> {response.status_code} {response.text[:160]!r}"
                )

    run()
    return failures


def fuzz_all(server: LiveServer, schema: Any, headers: dict[str, str], examples: int) -> None:
    failures: list[str] = []
    for operation in operations(schema):
        failures += fuzz(server, operation, headers, examples)
    assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
    assert not failures, "\n".join(failures[:60])


def test_fuzzed_requests_get_no_5xx_and_match_the_schema(
    server: LiveServer, schema: Any, fuzz_token: str
) -> None:
    fuzz_all(server, schema, {"Authorization": f"Bearer {fuzz_token}"}, examples=5)


@pytest.mark.slow
@pytest.mark.parametrize("caller", ["anonymous", "writer"])
def test_fuzzed_requests_long_run(
    server: LiveServer, schema: Any, fuzz_token: str, caller: str
) -> None:
    headers = {"Authorization": f"Bearer {fuzz_token}"} if caller == "writer" else {}
    fuzz_all(server, schema, headers, examples=100)
